-- What a grant carries beyond its scopes, for OpenID Connect, resource
-- indicators and DPoP: the authorization request's nonce, when the user
-- authorized (unix microseconds, UTC; NULL for none), the user's claims
-- read from the IdP's JWT at that moment (a JSON object, '' for none),
-- and the resources asked for (space-separated URIs). A family keeps
-- what its code had, and the thumbprint of the DPoP key its refresh
-- tokens are bound to ('' for none). An access token keeps its audience
-- and the thumbprint of the DPoP key it is bound to ('' for none).
ALTER TABLE oauth_codes ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN auth_time INTEGER;
ALTER TABLE oauth_codes ADD COLUMN claims TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';

ALTER TABLE oauth_families ADD COLUMN auth_time INTEGER;
ALTER TABLE oauth_families ADD COLUMN claims TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';

ALTER TABLE oauth_tokens ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_tokens ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
