-- What a grant carries beyond its scopes, for OpenID Connect, resource
-- indicators and DPoP: the authorization request's nonce, when the user
-- authorized (NULL for none), the user's claims
-- read from the IdP's JWT at that moment (a JSON object, '' for none),
-- and the resources asked for (space-separated URIs). A family keeps
-- what its code had, and the thumbprint of the DPoP key its refresh
-- tokens are bound to ('' for none). An access token keeps its audience
-- and the thumbprint of the DPoP key it is bound to ('' for none).
ALTER TABLE oauth_codes ADD COLUMN nonce text NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN auth_time timestamptz;
ALTER TABLE oauth_codes ADD COLUMN claims text NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ADD COLUMN resources text NOT NULL DEFAULT '';

ALTER TABLE oauth_families ADD COLUMN auth_time timestamptz;
ALTER TABLE oauth_families ADD COLUMN claims text NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN resources text NOT NULL DEFAULT '';
ALTER TABLE oauth_families ADD COLUMN dpop_jkt text NOT NULL DEFAULT '';

ALTER TABLE oauth_tokens ADD COLUMN audience text NOT NULL DEFAULT '';
ALTER TABLE oauth_tokens ADD COLUMN dpop_jkt text NOT NULL DEFAULT '';
