package sqlstore

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func TestSQLiteSigningKeys(t *testing.T) {
	testSigningKeyContract(t, openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db")))
}

func TestPostgresSigningKeys(t *testing.T) {
	testSigningKeyContract(t, openPostgresAt(t, pgtest.Start(t)))
}

// Two instances starting together on one database sign with the same key.
func TestSQLiteKeyRingsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	testKeyRingsAgree(t, func(t *testing.T) oauth.Store { return openSQLiteAt(t, path) })
}

func TestPostgresKeyRingsAgree(t *testing.T) {
	dsn := pgtest.Start(t)
	testKeyRingsAgree(t, func(t *testing.T) oauth.Store { return openPostgresAt(t, dsn) })
}

// signingKeyTime is the fixed clock of these tests, so that no slot
// boundary falls inside one.
var signingKeyTime = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

func storedKey(kidChar byte, slot int64, alg string) oauth.StoredSigningKey {
	return oauth.StoredSigningKey{
		KID:        strings.Repeat(string(kidChar), 43),
		Slot:       slot,
		Alg:        alg,
		PrivateKey: []byte{0x30, 0x82, kidChar, 0x00, 0xff},
		CreatedAt:  testTime,
		RetireAt:   testTime.Add(time.Hour),
	}
}

func testSigningKeyContract(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	insert := func(k oauth.StoredSigningKey) bool {
		t.Helper()
		ok, err := s.InsertSigningKey(ctx, k)
		if err != nil {
			t.Fatalf("InsertSigningKey(%s): %v", k.KID[:4], err)
		}
		return ok
	}
	a := storedKey('a', 7, oauth.AlgRS256)
	if !insert(a) {
		t.Fatal("first key of a slot not inserted")
	}
	// The first key of a (slot, alg) wins; another alg has its own.
	if insert(storedKey('b', 7, oauth.AlgRS256)) {
		t.Error("a second key for the same slot and alg was inserted")
	}
	if insert(a) {
		t.Error("the same key was inserted twice")
	}
	c := storedKey('c', 7, oauth.AlgES256)
	c.RetireAt = testTime.Add(2 * time.Hour)
	if !insert(c) {
		t.Error("a key of another alg for the same slot was not inserted")
	}

	byKID := func() map[string]oauth.StoredSigningKey {
		t.Helper()
		keys, err := s.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]oauth.StoredSigningKey{}
		for _, k := range keys {
			m[k.KID] = k
		}
		return m
	}
	keys := byKID()
	if len(keys) != 2 {
		t.Fatalf("SigningKeys = %d keys, want 2", len(keys))
	}
	got := keys[a.KID]
	if got.KID != a.KID || got.Slot != a.Slot || got.Alg != a.Alg || !bytes.Equal(got.PrivateKey, a.PrivateKey) {
		t.Errorf("first key = %s slot %d alg %s key %x, want %s 7 RS256 %x", got.KID, got.Slot, got.Alg, got.PrivateKey, a.KID, a.PrivateKey)
	}
	assertUTC(t, "CreatedAt", got.CreatedAt, a.CreatedAt)
	assertUTC(t, "RetireAt", got.RetireAt, a.RetireAt)

	// Extending only moves retirement later.
	later := testTime.Add(3 * time.Hour)
	if err := s.ExtendSigningKey(ctx, a.KID, later); err != nil {
		t.Fatal(err)
	}
	if err := s.ExtendSigningKey(ctx, a.KID, testTime); err != nil {
		t.Fatal(err)
	}
	if err := s.ExtendSigningKey(ctx, strings.Repeat("z", 43), later); err != nil {
		t.Errorf("ExtendSigningKey(missing key) = %v, want nil", err)
	}
	assertUTC(t, "RetireAt after extending", byKID()[a.KID].RetireAt, later)

	// A key is purged once retired, not before.
	n, err := s.PurgeSigningKeys(ctx, c.RetireAt.Add(-time.Microsecond))
	if err != nil || n != 0 {
		t.Errorf("PurgeSigningKeys before any retired = %d, %v; want 0", n, err)
	}
	n, err = s.PurgeSigningKeys(ctx, c.RetireAt)
	if err != nil || n != 1 {
		t.Errorf("PurgeSigningKeys at c's retirement = %d, %v; want 1", n, err)
	}
	if keys := byKID(); len(keys) != 1 || keys[a.KID].KID != a.KID {
		t.Errorf("after the purge %d keys remain, want only the extended one", len(keys))
	}
	// A purged slot can get a key again.
	if !insert(storedKey('d', 7, oauth.AlgES256)) {
		t.Error("no key inserted for a slot whose key was purged")
	}
}

// testKeyRingsAgree starts two instances at once on stores opened by open
// (one database), checks they sign with the same key, and then that a
// restart finds that key again.
func testKeyRingsAgree(t *testing.T, open func(t *testing.T) oauth.Store) {
	now := func() time.Time { return signingKeyTime }
	for _, alg := range []string{oauth.AlgRS256, oauth.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			const instances = 2
			rings := make([]*oauth.KeyRing, instances)
			for i := range rings {
				r, err := oauth.NewKeyRing(open(t), alg, 720*time.Hour, time.Hour, now)
				if err != nil {
					t.Fatal(err)
				}
				rings[i] = r
			}
			kids := make([]string, instances)
			errs := make([]error, instances)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, r := range rings {
				wg.Go(func() {
					<-start
					k, err := r.Current(context.Background())
					if errs[i] = err; err == nil {
						kids[i] = k.KID()
					}
				})
			}
			close(start)
			wg.Wait()
			for i := range instances {
				if errs[i] != nil {
					t.Fatalf("instance %d: %v", i, errs[i])
				}
			}
			if kids[0] != kids[1] {
				t.Fatalf("instances sign with %s and %s, want one key", kids[0], kids[1])
			}
			if err := rings[1].Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if a, b := rings[0].JWKS(), rings[1].JWKS(); !bytes.Equal(a, b) {
				t.Errorf("instances publish different key sets:\n%s\n%s", a, b)
			}

			// A restart (a new store and ring on the same database)
			// signs with the stored key.
			r, err := oauth.NewKeyRing(open(t), alg, 720*time.Hour, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			k, err := r.Current(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if k.KID() != kids[0] {
				t.Errorf("after a restart the key is %s, want %s", k.KID(), kids[0])
			}
		})
	}
}
