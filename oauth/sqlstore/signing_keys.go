package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// signingKeyStatements are the oauth_signing_keys statements in one
// dialect.
type signingKeyStatements struct {
	insert, extend, list, purge string
}

func newSigningKeyStatements(d dialect) signingKeyStatements {
	return signingKeyStatements{
		// The unique (slot, alg) makes the first insert win; the
		// losers read the winner back.
		insert: d.rebind(`
			INSERT INTO oauth_signing_keys (kid, slot, alg, private_key, created_at, retire_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`),
		extend: d.rebind(`UPDATE oauth_signing_keys SET retire_at = ? WHERE kid = ? AND retire_at < ?`),
		list: d.rebind(`
			SELECT kid, slot, alg, private_key, created_at, retire_at
			FROM oauth_signing_keys ORDER BY slot, alg`),
		purge: d.rebind(`DELETE FROM oauth_signing_keys WHERE retire_at <= ?`),
	}
}

// InsertSigningKey implements oauth.SigningKeyStore.
func (t *tables) InsertSigningKey(ctx context.Context, k oauth.StoredSigningKey) (bool, error) {
	res, err := t.dialect.ExecContext(ctx, t.signingKeys.insert, k.KID, k.Slot, k.Alg, k.PrivateKey,
		t.dialect.timeArg(createdAtOrNow(k.CreatedAt)), t.dialect.timeArg(k.RetireAt))
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert signing key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert signing key: %w", err)
	}
	return n == 1, nil
}

// ExtendSigningKey implements oauth.SigningKeyStore.
func (t *tables) ExtendSigningKey(ctx context.Context, kid string, retireAt time.Time) error {
	at := t.dialect.timeArg(retireAt)
	if _, err := t.dialect.ExecContext(ctx, t.signingKeys.extend, at, kid, at); err != nil {
		return fmt.Errorf("sqlstore: extend signing key: %w", err)
	}
	return nil
}

// SigningKeys implements oauth.SigningKeyStore.
func (t *tables) SigningKeys(ctx context.Context) ([]oauth.StoredSigningKey, error) {
	rs, err := t.dialect.QueryContext(ctx, t.signingKeys.list)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
	}
	defer rs.Close()
	var out []oauth.StoredSigningKey
	for rs.Next() {
		var (
			k                   oauth.StoredSigningKey
			createdAt, retireAt timeColumn
		)
		if err := rs.Scan(&k.KID, &k.Slot, &k.Alg, &k.PrivateKey, &createdAt, &retireAt); err != nil {
			return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
		}
		k.CreatedAt, k.RetireAt = createdAt.Time, retireAt.Time
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
	}
	return out, nil
}

// PurgeSigningKeys implements oauth.SigningKeyStore.
func (t *tables) PurgeSigningKeys(ctx context.Context, retiredBy time.Time) (int, error) {
	res, err := t.dialect.ExecContext(ctx, t.signingKeys.purge, t.dialect.timeArg(retiredBy))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge signing keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge signing keys: %w", err)
	}
	return int(n), nil
}
