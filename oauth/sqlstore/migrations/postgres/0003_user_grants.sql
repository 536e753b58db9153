-- What listing and revoking one user's grants needs: when each consent was
-- given, and indexes to find a user's codes and refresh families (a
-- family's tokens are found through oauth_tokens_family_id). A consent
-- recorded before this migration counts as given when it ran.
ALTER TABLE oauth_consents ADD COLUMN granted_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE oauth_consents ALTER COLUMN granted_at DROP DEFAULT;
CREATE INDEX oauth_codes_user_client ON oauth_codes (user_id, client_id);
CREATE INDEX oauth_families_user_client ON oauth_families (user_id, client_id);
