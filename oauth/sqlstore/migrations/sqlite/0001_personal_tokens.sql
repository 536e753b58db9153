-- Each user's single personal API token (docs/reference.md). Times are unix
-- microseconds, UTC, the same precision PostgreSQL keeps.
CREATE TABLE personal_tokens (
	user_id      TEXT    NOT NULL PRIMARY KEY,
	token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	hint         TEXT    NOT NULL,
	scopes       TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
) STRICT;
