-- The keys that sign ID tokens and JWT access tokens, shared by every
-- instance. A key belongs to one rotation slot and one algorithm, and the
-- store keeps the first key inserted for each: that is how instances agree
-- on it. private_key is PKCS #8 DER; kid is the RFC 7638 thumbprint of its
-- public key. retire_at is when every token the key may have signed has
-- expired: it leaves the key set then, and is purged.
CREATE TABLE oauth_signing_keys (
	kid         text        NOT NULL PRIMARY KEY CHECK (length(kid) = 43),
	slot        bigint      NOT NULL,
	alg         text        NOT NULL,
	private_key bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	retire_at   timestamptz NOT NULL,
	UNIQUE (slot, alg)
);
