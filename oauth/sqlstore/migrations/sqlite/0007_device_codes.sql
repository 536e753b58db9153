-- Device authorizations (RFC 8628). Both codes are kept by hash only: the
-- device code by SHA-256, as every token; the user code, whose 20^8 values
-- are few enough to try one by one, by HMAC-SHA256 under a key derived
-- from the installation key. user_id and decided_at are set when a user
-- decides; interval_seconds grows with each slow_down. Times are unix
-- microseconds, UTC.
CREATE TABLE oauth_device_codes (
	device_code_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(device_code_hash) = 32),
	user_code_hash    BLOB    NOT NULL UNIQUE CHECK (length(user_code_hash) = 32),
	client_id         TEXT    NOT NULL,
	client_generation TEXT    NOT NULL,
	scopes            TEXT    NOT NULL,
	status            TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
	user_id           TEXT,
	interval_seconds  INTEGER NOT NULL CHECK (interval_seconds > 0),
	last_polled_at    INTEGER,
	decided_at        INTEGER,
	family_id         TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	expires_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_device_codes_expires_at ON oauth_device_codes (expires_at);
CREATE INDEX oauth_device_codes_user_id ON oauth_device_codes (user_id) WHERE user_id IS NOT NULL;
