package sqlstore

import (
	"context"
	"crypto/rand"
	"fmt"
)

// serverKeyName is the tokengate_secrets row of the refresh-derivation key.
const serverKeyName = "server_key"

// secretStatements are the tokengate_secrets statements in one dialect.
type secretStatements struct {
	insertFirst, read string
}

func newSecretStatements(d dialect) secretStatements {
	return secretStatements{
		insertFirst: d.rebind(`INSERT INTO tokengate_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
		read:        d.rebind(`SELECT value FROM tokengate_secrets WHERE name = ?`),
	}
}

// newServerKey returns a fresh random server key.
func newServerKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// ServerKey implements oauth.GrantStore. The first caller's key wins, in
// this instance or another sharing the database; the others insert nothing
// and read it back.
func (t *tables) ServerKey(ctx context.Context) ([]byte, error) {
	fresh, err := newServerKey()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	if _, err := t.dialect.ExecContext(ctx, t.secrets.insertFirst, serverKeyName, fresh); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	var key []byte
	if err := t.dialect.QueryRowContext(ctx, t.secrets.read, serverKeyName).Scan(&key); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	return key, nil
}
