-- Each user's single personal API token (docs/reference.md).
CREATE TABLE personal_tokens (
	user_id      text        NOT NULL PRIMARY KEY,
	token_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
	hint         text        NOT NULL,
	scopes       text        NOT NULL,
	created_at   timestamptz NOT NULL,
	last_used_at timestamptz
);
