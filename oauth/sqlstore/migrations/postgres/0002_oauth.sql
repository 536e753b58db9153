-- OAuth authorization codes, tokens, their refresh families and consents.
-- Codes and tokens are kept by SHA-256 only.
CREATE TABLE oauth_codes (
	code_hash    bytea       NOT NULL PRIMARY KEY CHECK (octet_length(code_hash) = 32),
	client_id    text        NOT NULL,
	user_id      text        NOT NULL,
	redirect_uri text        NOT NULL,
	scopes       text        NOT NULL,
	challenge    text        NOT NULL,
	family_id    text        NOT NULL,
	expires_at   timestamptz NOT NULL,
	used_at      timestamptz
);
CREATE INDEX oauth_codes_expires_at ON oauth_codes (expires_at);

CREATE TABLE oauth_families (
	family_id  text        NOT NULL PRIMARY KEY,
	client_id  text        NOT NULL,
	user_id    text        NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
);

CREATE TABLE oauth_tokens (
	token_hash bytea       NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
	kind       text        NOT NULL CHECK (kind IN ('a', 'r')),
	family_id  text        NOT NULL REFERENCES oauth_families (family_id) ON DELETE CASCADE,
	client_id  text        NOT NULL,
	user_id    text        NOT NULL,
	scopes     text        NOT NULL,
	issued_at  timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	rotated_at timestamptz
);
CREATE INDEX oauth_tokens_family_id ON oauth_tokens (family_id);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);

CREATE TABLE oauth_consents (
	user_id   text NOT NULL,
	client_id text NOT NULL,
	scopes    text NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

-- Installation secrets, such as the key refresh rotation derives from.
CREATE TABLE tokengate_secrets (
	name  text  NOT NULL PRIMARY KEY,
	value bytea NOT NULL
);
