package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// A revocation racing the exchange of the user's code and the rotation of
// the user's refresh token must leave none of what they issue live,
// whichever commits first, and never fail with a store error (a deadlock).
func testRevokeClientGrantRacing(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	for range 10 {
		g := authorized(t, s, "app", "alice")
		code := saveCode(t, s, "app", "alice", "chargers:read")
		exchangedPair, rotatedPair := newPair(t, grantNow, nil), newPair(t, grantNow, nil)
		errs := make(chan error, 3)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			_, err := s.ExchangeCode(ctx, code.Hash, grantNow, pass, exchangedPair)
			errs <- err
		})
		wg.Go(func() {
			<-start
			_, err := s.RotateRefresh(ctx, g.second.Refresh.Hash, "app", grantNow, 0, passGrant, rotatedPair)
			errs <- err
		})
		wg.Go(func() {
			<-start
			_, _, err := s.RevokeClientGrant(ctx, "alice", "app", grantNow)
			errs <- err
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, oauth.ErrNotFound) {
				t.Fatalf("racer: %v", err)
			}
		}
		for _, h := range []oauth.TokenHash{g.first.Access.Hash, g.second.Access.Hash, exchangedPair.Access.Hash, rotatedPair.Access.Hash} {
			assertNotFound(t, s, oauth.KindAccess, h)
		}
		for _, h := range []oauth.TokenHash{exchangedPair.Refresh.Hash, rotatedPair.Refresh.Hash} {
			if _, err := s.IntrospectToken(ctx, h); !errors.Is(err, oauth.ErrNotFound) {
				t.Fatalf("refresh token issued in the race still live: %v", err)
			}
		}
	}
}

// A consent recorded before granted_at existed is listed as given when the
// migration ran, on both databases.
func TestUserGrantsMigrationDatesOldConsents(t *testing.T) {
	ctx := context.Background()
	const oldConsent = `INSERT INTO oauth_consents (user_id, client_id, scopes) VALUES ('alice', 'app', 'a b')`
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokengate.db")
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sqliteMigrations[:2] {
			if err := applySQLiteMigration(ctx, db, m); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, oldConsent); err != nil {
			t.Fatal(err)
		}
		db.Close()
		checkMigratedConsent(t, func(t *testing.T) oauth.Store { return openSQLiteAt(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range postgresMigrations[:2] {
			if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return applyPostgresMigration(ctx, tx, m) }); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, oldConsent); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		checkMigratedConsent(t, func(t *testing.T) oauth.Store { return openPostgresAt(t, dsn) })
	})
}

// checkMigratedConsent opens the store, which migrates, and finds the old
// consent dated between just before and just after.
func checkMigratedConsent(t *testing.T, open func(t *testing.T) oauth.Store) {
	t.Helper()
	// unixepoch() counts whole seconds.
	before := time.Now().Truncate(time.Second)
	s := open(t)
	after := laterThan(storedTime(time.Now()))
	cs := consentsOf(t, s, "alice")
	if len(cs) != 1 || cs[0].ClientID != "app" || len(cs[0].Scopes) != 2 {
		t.Fatalf("consents after the migration = %+v", cs)
	}
	if got := cs[0].GrantedAt; got.Before(before) || got.After(after) {
		t.Errorf("old consent granted_at %v, want the migration's time, between %v and %v", got, before, after)
	}
}

// The access and personal tokens a user's revocation ends reach the other
// instances through LISTEN/NOTIFY, as RevokeToken's do.
func TestPostgresUserGrantRevocationsNotify(t *testing.T) {
	dsn := pgtest.Start(t)
	watcher := openPostgresAt(t, dsn)
	s := openPostgresAt(t, dsn)
	w := watchRevocations(t, watcher)
	waitListening(t, w)
	ctx := context.Background()

	app := authorized(t, s, "app", "alice")
	other := authorized(t, s, "other", "alice")
	pt := newPersonalToken(t, "alice")
	replace(t, s, pt)

	revoked, _, err := s.RevokeClientGrant(ctx, "alice", "app", grantNow)
	if err != nil {
		t.Fatal(err)
	}
	w.expectForgottenAll(t, revoked, app.accessHashes())

	revoked, _, err = s.RevokeUser(ctx, "alice", grantNow)
	if err != nil {
		t.Fatal(err)
	}
	w.expectForgottenAll(t, revoked, append(other.accessHashes(), pt.Hash))

	// Nothing else was announced (see TestPostgresGrantRevocationsNotify).
	_, marker := exchanged(t, s)
	if _, err := s.RevokeToken(ctx, marker.Access.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	w.expectForgotten(t, marker.Access.Hash)
}

// expectForgottenAll checks that the revocation returned want, and that
// each of them is heard next, in any order, within the second the contract
// gives from the revoking call's return: call it right after that call.
func (w *revocationWatch) expectForgottenAll(t *testing.T, returned, want []oauth.TokenHash) {
	t.Helper()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	if !sameHashes(returned, want) {
		t.Fatalf("revocation returned %x, want %x", returned, want)
	}
	var heard []oauth.TokenHash
	for len(heard) < len(want) {
		select {
		case h := <-w.forgotten:
			heard = append(heard, h)
			continue
		case <-timer.C:
		}
		// Those that came just in time may have lost select's draw.
		for len(heard) < len(want) {
			select {
			case h := <-w.forgotten:
				heard = append(heard, h)
			default:
				t.Fatalf("heard %d of %d revoked tokens within 1s", len(heard), len(want))
			}
		}
	}
	if !sameHashes(heard, want) {
		t.Fatalf("heard %x, want %x", heard, want)
	}
}
