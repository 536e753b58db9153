-- Clients kept in the database (added through the admin API, by users for
-- themselves, or registered dynamically), beside the config's static
-- clients. Secrets and registration access tokens are kept by SHA-256
-- only. redirect_uris is a JSON array; scopes and grant_types are
-- space-separated. Booleans are 0 or 1; times are unix microseconds, UTC.
CREATE TABLE oauth_clients (
	client_id                TEXT    NOT NULL PRIMARY KEY,
	generation               TEXT    NOT NULL,
	name                     TEXT    NOT NULL,
	secret_hash              BLOB    CHECK (length(secret_hash) = 32),
	redirect_uris            TEXT    NOT NULL,
	scopes                   TEXT    NOT NULL,
	pkce_required            INTEGER NOT NULL CHECK (pkce_required IN (0, 1)),
	grant_types              TEXT    NOT NULL,
	dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0 CHECK (dpop_bound_access_tokens IN (0, 1)),
	source                   TEXT    NOT NULL CHECK (source IN ('store', 'registration')),
	owner_user_id            TEXT,
	registration_token_hash  BLOB    UNIQUE CHECK (length(registration_token_hash) = 32),
	created_at               INTEGER NOT NULL,
	updated_at               INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_clients_owner_user_id ON oauth_clients (owner_user_id) WHERE owner_user_id IS NOT NULL;

-- The generation of the stored client a code or a refresh family was
-- issued to; '' for a client of the config.
ALTER TABLE oauth_codes ADD COLUMN client_generation TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN client_generation TEXT NOT NULL DEFAULT '';

-- Removing a client removes or revokes what was issued to it.
CREATE INDEX oauth_codes_client_id ON oauth_codes (client_id);
CREATE INDEX oauth_families_client_id ON oauth_families (client_id);
CREATE INDEX oauth_consents_client_id ON oauth_consents (client_id);
