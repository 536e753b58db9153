-- What listing and revoking one user's grants needs: when each consent was
-- given (unix microseconds, UTC), and indexes to find a user's codes and
-- refresh families (a family's tokens are found through
-- oauth_tokens_family_id). A consent recorded before this migration counts
-- as given when it ran. ADD COLUMN takes only a constant default, so the
-- existing rows are set in a second statement; every insert names the
-- column.
ALTER TABLE oauth_consents ADD COLUMN granted_at INTEGER NOT NULL DEFAULT 0;
UPDATE oauth_consents SET granted_at = unixepoch() * 1000000;
CREATE INDEX oauth_codes_user_client ON oauth_codes (user_id, client_id);
CREATE INDEX oauth_families_user_client ON oauth_families (user_id, client_id);
