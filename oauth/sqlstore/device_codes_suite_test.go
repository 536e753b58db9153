package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func TestSQLiteDeviceCodes(t *testing.T) {
	runDeviceSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

func TestPostgresDeviceCodes(t *testing.T) {
	runDeviceSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// runDeviceSuite checks the oauth.DeviceStore contract
// (oauth/devicestore.go) on one store implementation.
func runDeviceSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s oauth.Store)
	}{
		{"RFC 8628 3.2 save and find pending", testDeviceSaveAndFind},
		{"taken codes refused", testDeviceCodeTaken},
		{"RFC 8628 3.3 decided once", testDeviceDecideOnce},
		{"RFC 8628 3.5 authorization_pending then slow_down growth", testDevicePollSlowDown},
		{"RFC 8628 3.5 expired_token", testDevicePollExpired},
		{"RFC 8628 3.5 access_denied", testDevicePollDenied},
		{"approved issues once, then used", testDevicePollIssues},
		{"failed check writes nothing", testDevicePollCheckFails},
		{"racing polls one issue", testDeviceConcurrentPolls},
		{"removed stored client issues nothing", testDeviceRemovedClient},
		{"user revocation ends an approval not yet issued", testDeviceUserRevocation},
		{"purge expired", testDevicePurge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// newDeviceAuthorization stores a pending device authorization for
// clientID created at grantNow, living ten minutes, polled every 5 s.
func newDeviceAuthorization(t *testing.T, s oauth.Store, clientID, generation string, scopes ...string) oauth.DeviceAuthorization {
	t.Helper()
	_, h := newHash(t, oauth.KindDevice)
	var uh oauth.UserCodeHash
	if _, err := rand.Read(uh[:]); err != nil {
		t.Fatal(err)
	}
	a := oauth.DeviceAuthorization{
		DeviceCodeHash:   h,
		UserCodeHash:     uh,
		ClientID:         clientID,
		ClientGeneration: generation,
		Scopes:           scopes,
		Status:           oauth.DevicePending,
		Interval:         5 * time.Second,
		FamilyID:         "device-family-" + hex.EncodeToString(h[:8]),
		CreatedAt:        storedTime(grantNow),
		ExpiresAt:        storedTime(grantNow.Add(10 * time.Minute)),
	}
	if err := s.SaveDeviceAuthorization(context.Background(), a); err != nil {
		t.Fatalf("SaveDeviceAuthorization: %v", err)
	}
	return a
}

func passDevice(oauth.DeviceAuthorization) error { return nil }

func poll(t *testing.T, s oauth.Store, a oauth.DeviceAuthorization, now time.Time, pair oauth.IssuedPair) oauth.DevicePoll {
	t.Helper()
	p, err := s.PollDeviceAuthorization(context.Background(), a.DeviceCodeHash, now, passDevice, pair)
	if err != nil {
		t.Fatalf("PollDeviceAuthorization: %v", err)
	}
	return p
}

func decide(t *testing.T, s oauth.Store, a oauth.DeviceAuthorization, user string, approve bool) oauth.DeviceAuthorization {
	t.Helper()
	d, err := s.DecideDeviceAuthorization(context.Background(), a.UserCodeHash, user, approve, grantNow.Add(time.Minute))
	if err != nil {
		t.Fatalf("DecideDeviceAuthorization: %v", err)
	}
	return d
}

func testDeviceSaveAndFind(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	a := newDeviceAuthorization(t, s, "tv", "", "chargers:read", "energy:read")
	got, err := s.PendingDeviceAuthorization(ctx, a.UserCodeHash, grantNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.DeviceCodeHash != a.DeviceCodeHash || got.ClientID != "tv" || !slices.Equal(got.Scopes, a.Scopes) ||
		got.Status != oauth.DevicePending || got.UserID != "" || got.Interval != 5*time.Second ||
		!got.LastPolledAt.IsZero() || got.FamilyID != a.FamilyID || !got.CreatedAt.Equal(a.CreatedAt) || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("found %+v, want %+v", got, a)
	}
	if got.ExpiresAt.Location() != time.UTC {
		t.Errorf("expiry in %v, want UTC", got.ExpiresAt.Location())
	}
	var other oauth.UserCodeHash
	if _, err := s.PendingDeviceAuthorization(ctx, other, grantNow); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown user code: %v, want ErrNotFound", err)
	}
	if _, err := s.PendingDeviceAuthorization(ctx, a.UserCodeHash, a.ExpiresAt); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("at expiry: %v, want ErrNotFound", err)
	}
}

func testDeviceCodeTaken(t *testing.T, s oauth.Store) {
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	sameUserCode := a
	_, sameUserCode.DeviceCodeHash = newHash(t, oauth.KindDevice)
	if err := s.SaveDeviceAuthorization(context.Background(), sameUserCode); !errors.Is(err, oauth.ErrDeviceCodeTaken) {
		t.Errorf("same user code: %v, want ErrDeviceCodeTaken", err)
	}
	sameDeviceCode := a
	sameDeviceCode.UserCodeHash[0] ^= 1
	if err := s.SaveDeviceAuthorization(context.Background(), sameDeviceCode); !errors.Is(err, oauth.ErrDeviceCodeTaken) {
		t.Errorf("same device code: %v, want ErrDeviceCodeTaken", err)
	}
}

func testDeviceDecideOnce(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	d := decide(t, s, a, "alice", true)
	if d.Status != oauth.DeviceApproved || d.UserID != "alice" || d.ClientID != "tv" || !d.DecidedAt.Equal(storedTime(grantNow.Add(time.Minute))) {
		t.Errorf("decided %+v, want approved by alice a minute after grantNow", d)
	}
	// Decided: neither pending nor open to another decision.
	if _, err := s.PendingDeviceAuthorization(ctx, a.UserCodeHash, grantNow); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("pending after approval: %v, want ErrNotFound", err)
	}
	if _, err := s.DecideDeviceAuthorization(ctx, a.UserCodeHash, "mallory", false, grantNow); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("second decision: %v, want ErrNotFound", err)
	}
	// An expired one cannot be decided.
	b := newDeviceAuthorization(t, s, "tv", "", "a")
	if _, err := s.DecideDeviceAuthorization(ctx, b.UserCodeHash, "alice", true, b.ExpiresAt); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("decision at expiry: %v, want ErrNotFound", err)
	}

	// Of racing decisions, one wins.
	c := newDeviceAuthorization(t, s, "tv", "", "a")
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.DecideDeviceAuthorization(ctx, c.UserCodeHash, "racer", i%2 == 0, grantNow)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, oauth.ErrNotFound):
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d racing decisions succeeded, want 1", wins, racers)
	}
}

func testDevicePollSlowDown(t *testing.T, s oauth.Store) {
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	pair := newPair(t, grantNow, nil)
	now := grantNow.Add(time.Second)
	// The first poll may come at once.
	if p := poll(t, s, a, now, pair); p.Outcome != oauth.DevicePollPending || p.Interval != 5*time.Second {
		t.Fatalf("first poll %+v, want pending with interval 5s", p)
	}
	// Each poll sooner than the interval after the last one grows it by
	// 5 s, for all later polls.
	for i, want := range []time.Duration{10 * time.Second, 15 * time.Second} {
		now = now.Add(4 * time.Second)
		if p := poll(t, s, a, now, pair); p.Outcome != oauth.DevicePollSlowDown || p.Interval != want {
			t.Fatalf("fast poll %d: %+v, want slow_down with interval %v", i+1, p, want)
		}
	}
	// 14 s after the last poll is still too soon for 15 s.
	now = now.Add(14 * time.Second)
	if p := poll(t, s, a, now, pair); p.Outcome != oauth.DevicePollSlowDown || p.Interval != 20*time.Second {
		t.Fatalf("poll 14 s after the last: %+v, want slow_down with interval 20s", p)
	}
	now = now.Add(20 * time.Second)
	if p := poll(t, s, a, now, pair); p.Outcome != oauth.DevicePollPending || p.Interval != 20*time.Second {
		t.Fatalf("poll one interval after the last: %+v, want pending with interval 20s", p)
	}
}

func testDevicePollExpired(t *testing.T, s oauth.Store) {
	pair := newPair(t, grantNow, nil)
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	if p := poll(t, s, a, a.ExpiresAt, pair); p.Outcome != oauth.DevicePollExpired {
		t.Errorf("pending at expiry: %+v, want expired", p)
	}
	// Approved but not polled in time is expired too: nothing is issued.
	b := newDeviceAuthorization(t, s, "tv", "", "a")
	decide(t, s, b, "alice", true)
	if p := poll(t, s, b, b.ExpiresAt.Add(time.Second), pair); p.Outcome != oauth.DevicePollExpired {
		t.Errorf("approved after expiry: %+v, want expired", p)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
}

func testDevicePollDenied(t *testing.T, s oauth.Store) {
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	decide(t, s, a, "alice", false)
	pair := newPair(t, grantNow, nil)
	for i := range 2 {
		if p := poll(t, s, a, grantNow.Add(time.Duration(i)*time.Second), pair); p.Outcome != oauth.DevicePollDenied || p.UserID != "alice" {
			t.Errorf("poll %d after deny: %+v, want denied by alice", i, p)
		}
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
}

func testDevicePollIssues(t *testing.T, s oauth.Store) {
	a := newDeviceAuthorization(t, s, "tv", "", "chargers:read", "energy:read")
	now := grantNow.Add(2 * time.Minute)
	pair := newPair(t, now, nil)
	if p := poll(t, s, a, grantNow.Add(time.Minute), pair); p.Outcome != oauth.DevicePollPending {
		t.Fatalf("poll before the decision: %+v, want pending", p)
	}
	decide(t, s, a, "alice", true)
	// Right after a poll, approved still issues: slow_down is for pending
	// ones only.
	p := poll(t, s, a, grantNow.Add(time.Minute+time.Second), pair)
	if p.Outcome != oauth.DevicePollIssued || p.UserID != "alice" || !slices.Equal(p.Scopes, a.Scopes) {
		t.Fatalf("poll after approval: %+v, want issued to alice", p)
	}
	got := mustAccess(t, s, pair.Access.Hash)
	if got.UserID != "alice" || got.ClientID != "tv" || !slices.Equal(got.Scopes, a.Scopes) {
		t.Errorf("access token principal %+v", got)
	}
	// The refresh token rotates as any other: its family exists, and
	// dates the authorization from the approval.
	var family oauth.RefreshGrant
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "tv", now, 0, func(g oauth.RefreshGrant) error {
		family = g
		return nil
	}, newPair(t, now, nil)); err != nil {
		t.Errorf("rotating the device grant's refresh token: %v", err)
	}
	if family.UserID != "alice" || !family.AuthTime.Equal(storedTime(grantNow.Add(time.Minute))) {
		t.Errorf("family %+v: want alice's, authorized at the approval", family)
	}
	other := newPair(t, now, nil)
	if p := poll(t, s, a, now, other); p.Outcome != oauth.DevicePollUsed {
		t.Errorf("poll after issue: %+v, want used", p)
	}
	assertNotFound(t, s, oauth.KindAccess, other.Access.Hash)
}

func testDevicePollCheckFails(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	refused := errors.New("another client")
	pair := newPair(t, grantNow, nil)
	var seen oauth.DeviceAuthorization
	_, err := s.PollDeviceAuthorization(ctx, a.DeviceCodeHash, grantNow, func(d oauth.DeviceAuthorization) error {
		seen = d
		return refused
	}, pair)
	if !errors.Is(err, refused) {
		t.Fatalf("poll with failing check: %v, want the check's error", err)
	}
	if seen.ClientID != "tv" || seen.ClientGeneration != "" {
		t.Errorf("check saw %+v", seen)
	}
	// Not counted as a poll: the next one, at once, is not too fast.
	if p := poll(t, s, a, grantNow.Add(time.Second), pair); p.Outcome != oauth.DevicePollPending {
		t.Errorf("poll after a refused one: %+v, want pending", p)
	}
	var unknown oauth.TokenHash
	if _, err := s.PollDeviceAuthorization(ctx, unknown, grantNow, passDevice, pair); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown device code: %v, want ErrNotFound", err)
	}
}

func testDeviceConcurrentPolls(t *testing.T, s oauth.Store) {
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	decide(t, s, a, "alice", true)
	pairs := make([]oauth.IssuedPair, racers)
	for i := range pairs {
		pairs[i] = newPair(t, grantNow, nil)
	}
	polls := make([]oauth.DevicePoll, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			polls[i], errs[i] = s.PollDeviceAuthorization(context.Background(), a.DeviceCodeHash, grantNow.Add(time.Minute), passDevice, pairs[i])
		})
	}
	close(start)
	wg.Wait()
	issued := 0
	for i := range racers {
		switch {
		case errs[i] != nil:
			t.Errorf("racer %d: %v", i, errs[i])
		case polls[i].Outcome == oauth.DevicePollIssued:
			issued++
			mustAccess(t, s, pairs[i].Access.Hash)
		case polls[i].Outcome == oauth.DevicePollUsed:
			assertNotFound(t, s, oauth.KindAccess, pairs[i].Access.Hash)
		default:
			t.Errorf("racer %d: %+v, want issued or used", i, polls[i])
		}
	}
	if issued != 1 {
		t.Errorf("%d of %d racing polls were issued tokens, want exactly 1", issued, racers)
	}
}

func testDeviceRemovedClient(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	createClient(t, s, newStoredClient("stored-tv", "gen-1"))
	a := newDeviceAuthorization(t, s, "stored-tv", "gen-1", "chargers:read")
	decide(t, s, a, "alice", true)
	if err := s.DeleteClient(ctx, "stored-tv", grantNow); err != nil {
		t.Fatal(err)
	}
	// A new client of the same id is another client.
	createClient(t, s, newStoredClient("stored-tv", "gen-2"))
	pair := newPair(t, grantNow, nil)
	if _, err := s.PollDeviceAuthorization(ctx, a.DeviceCodeHash, grantNow.Add(time.Minute), passDevice, pair); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("poll for a removed client: %v, want ErrNotFound", err)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
}

func testDeviceUserRevocation(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	approved := newDeviceAuthorization(t, s, "tv", "", "a")
	decide(t, s, approved, "alice", true)
	pending := newDeviceAuthorization(t, s, "tv", "", "a")
	if _, found, err := s.RevokeClientGrant(ctx, "alice", "tv", grantNow.Add(time.Minute)); err != nil || !found {
		t.Fatalf("RevokeClientGrant = %v, %v; want found", found, err)
	}
	pair := newPair(t, grantNow, nil)
	if _, err := s.PollDeviceAuthorization(ctx, approved.DeviceCodeHash, grantNow.Add(2*time.Minute), passDevice, pair); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("poll of an approval the user revoked: %v, want ErrNotFound", err)
	}
	// Another device's request, which nobody has decided, is not the
	// user's.
	if _, err := s.PendingDeviceAuthorization(ctx, pending.UserCodeHash, grantNow.Add(2*time.Minute)); err != nil {
		t.Errorf("an undecided request after the user's revocation: %v", err)
	}
}

func testDevicePurge(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	a := newDeviceAuthorization(t, s, "tv", "", "a")
	if n, err := s.PurgeExpired(ctx, a.ExpiresAt.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge an hour after expiry = %d, %v; want 0", n, err)
	}
	// Kept a day past expiry, then gone.
	if n, err := s.PurgeExpired(ctx, a.ExpiresAt.Add(25*time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge a day after expiry = %d, %v; want 1", n, err)
	}
	if _, err := s.PollDeviceAuthorization(ctx, a.DeviceCodeHash, grantNow, passDevice, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("purged device code: %v, want ErrNotFound", err)
	}
}
