package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// deviceCodeStatements are the statements of the device authorizations
// (oauth_device_codes), in one dialect.
type deviceCodeStatements struct {
	save, pending, decide, pollRow, polled, issue string
	purge                                         []string
}

// deviceCodeColumns are the columns scanDeviceCode reads, in its order.
const deviceCodeColumns = `device_code_hash, user_code_hash, client_id, client_generation, scopes, status, user_id,
	interval_seconds, last_polled_at, decided_at, family_id, created_at, expires_at`

func newDeviceCodeStatements(d dialect) deviceCodeStatements {
	return deviceCodeStatements{
		// A code already stored changes nothing, which the caller hears
		// as ErrDeviceCodeTaken.
		save: d.rebind(`
			INSERT INTO oauth_device_codes (` + deviceCodeColumns + `)
			VALUES (?, ?, ?, ?, ?, 'pending', NULL, ?, NULL, NULL, ?, ?, ?)
			ON CONFLICT DO NOTHING`),
		pending: d.rebind(`SELECT ` + deviceCodeColumns + ` FROM oauth_device_codes
			WHERE user_code_hash = ? AND status = 'pending' AND expires_at > ?`),
		// One statement decides: of two racing decisions the second finds
		// the row no longer pending.
		decide: d.rebind(`UPDATE oauth_device_codes SET status = ?, user_id = ?, decided_at = ?
			WHERE user_code_hash = ? AND status = 'pending' AND expires_at > ?
			RETURNING ` + deviceCodeColumns),
		pollRow: d.rebind(`SELECT ` + deviceCodeColumns + ` FROM oauth_device_codes
			WHERE device_code_hash = ?` + d.forUpdate()),
		polled: d.rebind(`UPDATE oauth_device_codes SET last_polled_at = ?, interval_seconds = ?
			WHERE device_code_hash = ?`),
		issue: d.rebind(`UPDATE oauth_device_codes SET status = 'issued', last_polled_at = ?
			WHERE device_code_hash = ?`),
		purge: []string{
			d.rebind(`DELETE FROM oauth_device_codes WHERE expires_at < ?`),
		},
	}
}

// SaveDeviceAuthorization implements oauth.DeviceStore.
func (t *tables) SaveDeviceAuthorization(ctx context.Context, a oauth.DeviceAuthorization) error {
	err := changedOne(t.dialect.ExecContext(ctx, t.devices.save,
		a.DeviceCodeHash[:], a.UserCodeHash[:], a.ClientID, a.ClientGeneration, joinScopes(a.Scopes),
		intervalSeconds(a.Interval), a.FamilyID, t.dialect.timeArg(a.CreatedAt), t.dialect.timeArg(a.ExpiresAt)))
	switch {
	case errors.Is(err, oauth.ErrNotFound):
		return oauth.ErrDeviceCodeTaken
	case err != nil:
		return fmt.Errorf("sqlstore: save device authorization: %w", err)
	}
	return nil
}

// PendingDeviceAuthorization implements oauth.DeviceStore.
func (t *tables) PendingDeviceAuthorization(ctx context.Context, h oauth.UserCodeHash, now time.Time) (oauth.DeviceAuthorization, error) {
	a, err := scanDeviceCode(t.dialect.QueryRowContext(ctx, t.devices.pending, h[:], t.dialect.timeArg(now)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return oauth.DeviceAuthorization{}, oauth.ErrNotFound
	case err != nil:
		return oauth.DeviceAuthorization{}, fmt.Errorf("sqlstore: read device authorization: %w", err)
	}
	return a, nil
}

// DecideDeviceAuthorization implements oauth.DeviceStore.
func (t *tables) DecideDeviceAuthorization(ctx context.Context, h oauth.UserCodeHash, userID string, approve bool, now time.Time) (oauth.DeviceAuthorization, error) {
	status := oauth.DeviceDenied
	if approve {
		status = oauth.DeviceApproved
	}
	var a oauth.DeviceAuthorization
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		var err error
		a, err = scanDeviceCode(tx.QueryRowContext(ctx, t.devices.decide, string(status), userID, t.dialect.timeArg(now), h[:], t.dialect.timeArg(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		return err
	})
	if err != nil {
		return oauth.DeviceAuthorization{}, wrapGrantErr("decide device authorization", err)
	}
	return a, nil
}

// PollDeviceAuthorization implements oauth.DeviceStore. The row is read
// for update: of racing polls of an approved authorization, the first
// issues the pair and the others find it issued.
func (t *tables) PollDeviceAuthorization(ctx context.Context, h oauth.TokenHash, now time.Time, check func(oauth.DeviceAuthorization) error, pair oauth.IssuedPair) (oauth.DevicePoll, error) {
	var poll oauth.DevicePoll
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		a, err := scanDeviceCode(tx.QueryRowContext(ctx, t.devices.pollRow, h[:]))
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := check(a); err != nil {
			return err
		}
		poll = oauth.DevicePoll{Interval: a.Interval, UserID: a.UserID, Scopes: a.Scopes}
		at := t.dialect.timeArg(now)
		switch {
		case !now.Before(a.ExpiresAt):
			poll.Outcome = oauth.DevicePollExpired
			return nil
		case a.Status == oauth.DevicePending:
			poll.Outcome = oauth.DevicePollPending
			if !a.LastPolledAt.IsZero() && now.Sub(a.LastPolledAt) < a.Interval {
				poll.Outcome = oauth.DevicePollSlowDown
				poll.Interval += oauth.DeviceSlowDownStep
			}
			_, err := tx.ExecContext(ctx, t.devices.polled, at, intervalSeconds(poll.Interval), h[:])
			return err
		case a.Status == oauth.DeviceDenied:
			poll.Outcome = oauth.DevicePollDenied
			return nil
		case a.Status == oauth.DeviceIssued:
			poll.Outcome = oauth.DevicePollUsed
			return nil
		}
		if err := t.clientLive(ctx, tx, a.ClientID, a.ClientGeneration); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.devices.issue, at, h[:]); err != nil {
			return err
		}
		// The user authorized when they approved.
		if err := t.insertFamily(ctx, tx, a.FamilyID, a.ClientID, a.UserID, a.ClientGeneration, now, oauth.GrantContext{AuthTime: a.DecidedAt, DPoPKey: pair.FamilyDPoPKey}); err != nil {
			return err
		}
		poll.Outcome = oauth.DevicePollIssued
		return t.insertPair(ctx, tx, a.FamilyID, a.ClientID, a.UserID, a.Scopes, pair)
	})
	if err != nil {
		return oauth.DevicePoll{}, wrapGrantErr("poll device authorization", err)
	}
	return poll, nil
}

// scanDeviceCode reads one row of deviceCodeColumns.
func scanDeviceCode(r row) (oauth.DeviceAuthorization, error) {
	var (
		a                     oauth.DeviceAuthorization
		deviceHash, userHash  []byte
		scopes, status        string
		userID                sql.NullString
		interval              int64
		lastPolled, decidedAt timeColumn
		createdAt, expiresAt  timeColumn
	)
	err := r.Scan(&deviceHash, &userHash, &a.ClientID, &a.ClientGeneration, &scopes, &status, &userID,
		&interval, &lastPolled, &decidedAt, &a.FamilyID, &createdAt, &expiresAt)
	if err != nil {
		return oauth.DeviceAuthorization{}, err
	}
	if a.DeviceCodeHash, err = tokenHash(deviceHash); err != nil {
		return oauth.DeviceAuthorization{}, err
	}
	if len(userHash) != len(a.UserCodeHash) {
		return oauth.DeviceAuthorization{}, fmt.Errorf("sqlstore: user code hash of %d bytes", len(userHash))
	}
	copy(a.UserCodeHash[:], userHash)
	a.Scopes, a.Status, a.UserID = splitScopes(scopes), oauth.DeviceStatus(status), userID.String
	a.Interval = time.Duration(interval) * time.Second
	a.LastPolledAt, a.DecidedAt = lastPolled.Time, decidedAt.Time
	a.CreatedAt, a.ExpiresAt = createdAt.Time, expiresAt.Time
	return a, nil
}

// intervalSeconds is a polling interval as stored: whole seconds, at least
// one (RFC 8628 3.2 gives it in seconds).
func intervalSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
