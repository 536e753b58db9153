-- OAuth authorization codes, tokens, their refresh families and consents.
-- Codes and tokens are kept by SHA-256 only. Times are unix microseconds,
-- UTC.
CREATE TABLE oauth_codes (
	code_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
	client_id    TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	redirect_uri TEXT    NOT NULL,
	scopes       TEXT    NOT NULL,
	challenge    TEXT    NOT NULL,
	family_id    TEXT    NOT NULL,
	expires_at   INTEGER NOT NULL,
	used_at      INTEGER
) STRICT;
CREATE INDEX oauth_codes_expires_at ON oauth_codes (expires_at);

CREATE TABLE oauth_families (
	family_id  TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;

CREATE TABLE oauth_tokens (
	token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
	kind       TEXT    NOT NULL CHECK (kind IN ('a', 'r')),
	family_id  TEXT    NOT NULL REFERENCES oauth_families (family_id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER,
	rotated_at INTEGER
) STRICT;
CREATE INDEX oauth_tokens_family_id ON oauth_tokens (family_id);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);

CREATE TABLE oauth_consents (
	user_id   TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes    TEXT NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT;

-- Installation secrets, such as the key refresh rotation derives from.
CREATE TABLE tokengate_secrets (
	name  TEXT NOT NULL PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
