// Package sqlstore keeps tokengate's durable state in SQL: SQLite for a single
// instance (the default, nothing to install) and PostgreSQL for several
// instances sharing one database (docs/operations.md). Both implement oauth.Store with
// the same tables (tables.go), each through its dialect (dialect.go), and
// bring their schema up to date when opened.
package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Driver names accepted by Open.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Open opens the store of the given driver: a file path for DriverSQLite, a
// connection string (URL or key=value) for DriverPostgres.
func Open(ctx context.Context, driver, pathOrDSN string) (oauth.Store, error) {
	// Each case returns through its own variable so that a failed open
	// yields a nil interface, not an interface holding a nil pointer.
	switch driver {
	case DriverSQLite:
		s, err := OpenSQLite(ctx, pathOrDSN)
		if err != nil {
			return nil, err
		}
		return s, nil
	case DriverPostgres:
		s, err := OpenPostgres(ctx, pathOrDSN)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("sqlstore: unknown driver %q (want %q or %q)", driver, DriverSQLite, DriverPostgres)
}

// Scopes are stored space-joined, as OAuth writes them (RFC 6749 3.3), so a
// scope never contains a space and the order survives the round trip.
func joinScopes(scopes []string) string {
	return strings.Join(scopes, " ")
}

func splitScopes(s string) []string {
	return strings.Fields(s)
}

// tokenHash converts a stored hash column back into a TokenHash, refusing a
// value of the wrong length rather than silently padding or cutting it.
func tokenHash(b []byte) (oauth.TokenHash, error) {
	var h oauth.TokenHash
	if len(b) != len(h) {
		return h, fmt.Errorf("stored token hash has %d bytes, want %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// createdAtOrNow lets a caller leave CreatedAt zero to mean "now"; the zero
// time is outside what either database stores faithfully.
func createdAtOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
