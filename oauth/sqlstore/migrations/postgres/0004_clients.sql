-- Clients kept in the database (added through the admin API, by users for
-- themselves, or registered dynamically), beside the config's static
-- clients. Secrets and registration access tokens are kept by SHA-256
-- only. redirect_uris is a JSON array; scopes and grant_types are
-- space-separated.
CREATE TABLE oauth_clients (
	client_id                text        NOT NULL PRIMARY KEY,
	generation               text        NOT NULL,
	name                     text        NOT NULL,
	secret_hash              bytea       CHECK (octet_length(secret_hash) = 32),
	redirect_uris            text        NOT NULL,
	scopes                   text        NOT NULL,
	pkce_required            boolean     NOT NULL,
	grant_types              text        NOT NULL,
	dpop_bound_access_tokens boolean     NOT NULL DEFAULT false,
	source                   text        NOT NULL CHECK (source IN ('store', 'registration')),
	owner_user_id            text,
	registration_token_hash  bytea       UNIQUE CHECK (octet_length(registration_token_hash) = 32),
	created_at               timestamptz NOT NULL,
	updated_at               timestamptz NOT NULL
);
CREATE INDEX oauth_clients_owner_user_id ON oauth_clients (owner_user_id) WHERE owner_user_id IS NOT NULL;

-- The generation of the stored client a code or a refresh family was
-- issued to; '' for a client of the config.
ALTER TABLE oauth_codes ADD COLUMN client_generation text NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN client_generation text NOT NULL DEFAULT '';

-- Removing a client removes or revokes what was issued to it.
CREATE INDEX oauth_codes_client_id ON oauth_codes (client_id);
CREATE INDEX oauth_families_client_id ON oauth_families (client_id);
CREATE INDEX oauth_consents_client_id ON oauth_consents (client_id);
