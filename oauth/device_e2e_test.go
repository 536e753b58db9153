package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

const verificationURI = "https://api.example.com/oauth/device"

// deviceE2E is a device grant on a SQLite store with a test clock: the
// public client tv may use the device grant, app (confidential, default
// grant types) may not.
type deviceE2E struct {
	grant *oauth.DeviceGrant
	store *sqlstore.SQLite
	val   *oauth.Validator
	clk   *clock
	tv    *oauth.Client
	tv2   *oauth.Client
	app   *oauth.Client
	obs   *deviceRecorder
}

// deviceRecorder keeps the metrics and audit events it hears.
type deviceRecorder struct {
	mu     sync.Mutex
	issued map[oauth.Grant]int
	events []oauth.AuditEvent
}

func (r *deviceRecorder) CacheHit()  {}
func (r *deviceRecorder) CacheMiss() {}
func (r *deviceRecorder) TokenIssued(g oauth.Grant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issued[g]++
}
func (r *deviceRecorder) RefreshReuse()                          {}
func (r *deviceRecorder) StoreCall(oauth.StoreOp, time.Duration) {}
func (r *deviceRecorder) Audit(_ context.Context, e oauth.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *deviceRecorder) withMessage(msg string) []oauth.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []oauth.AuditEvent
	for _, e := range r.events {
		if e.Message == msg {
			out = append(out, e)
		}
	}
	return out
}

func newDeviceE2E(t *testing.T, ttl time.Duration) *deviceE2E {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "tokengate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	val, err := oauth.NewValidator(store, oauth.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(val.Close)
	deviceGrants := []string{oauth.GrantTypeDeviceCode, oauth.GrantTypeRefreshToken}
	tv, err := oauth.NewClient(oauth.ClientOptions{ID: "tv", Name: "Living Room TV", RedirectURIs: []string{redirect},
		Scopes: []string{"chargers:read", "energy:read"}, GrantTypes: deviceGrants})
	if err != nil {
		t.Fatal(err)
	}
	tv2, err := oauth.NewClient(oauth.ClientOptions{ID: "tv2", RedirectURIs: []string{redirect}, GrantTypes: deviceGrants})
	if err != nil {
		t.Fatal(err)
	}
	app, err := oauth.NewClient(oauth.ClientOptions{ID: "app", Secret: "s3cret", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := oauth.NewClientRegistry(tv, tv2, app)
	if err != nil {
		t.Fatal(err)
	}
	obs := &deviceRecorder{issued: map[oauth.Grant]int{}}
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	srv := &oauth.AuthServer{
		Store: store, UserGrants: store, Validator: val, Clients: reg,
		Scopes:  []oauth.Scope{{Name: "chargers:read"}, {Name: "sessions:read"}, {Name: "energy:read"}},
		Logger:  zap.NewNop(),
		Metrics: obs,
		Audit:   obs,
		Now:     clk.Now,
	}
	return &deviceE2E{
		grant: &oauth.DeviceGrant{Auth: srv, Store: store, TTL: ttl},
		store: store, val: val, clk: clk, tv: tv, tv2: tv2, app: app, obs: obs,
	}
}

func (e *deviceE2E) start(t *testing.T, scope string) oauth.DeviceAuthorizationResponse {
	t.Helper()
	r, oerr := e.grant.Start(context.Background(), e.tv, scope, verificationURI)
	if oerr != nil {
		t.Fatalf("Start: %v", oerr)
	}
	return r
}

func (e *deviceE2E) decide(t *testing.T, userCode, user string, approve bool) {
	t.Helper()
	if _, err := e.grant.Decide(context.Background(), userCode, user, approve); err != nil {
		t.Fatalf("Decide(%q): %v", userCode, err)
	}
}

// pollError polls as client and checks that the answer is the RFC 8628
// 3.5 error code, status 400.
func (e *deviceE2E) pollError(t *testing.T, client *oauth.Client, deviceCode, code string) *oauth.Error {
	t.Helper()
	tr, oerr := e.grant.Poll(context.Background(), client, deviceCode)
	if oerr == nil {
		t.Fatalf("poll answered tokens %+v, want %s", tr, code)
	}
	if oerr.Code != code || oerr.Status != http.StatusBadRequest {
		t.Fatalf("poll error %v (status %d), want %s, 400", oerr, oerr.Status, code)
	}
	return oerr
}

var shownUserCode = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// RFC 8628 3.2: the device authorization response.
func TestDeviceStartResponse(t *testing.T) {
	e := newDeviceE2E(t, 0)
	r := e.start(t, "")
	if k, err := oauth.ParseToken(r.DeviceCode); err != nil || k != oauth.KindDevice || !strings.HasPrefix(r.DeviceCode, "tgd_") {
		t.Errorf("device_code %q: want a tgd_ token", r.DeviceCode)
	}
	if !shownUserCode.MatchString(r.UserCode) {
		t.Errorf("user_code %q: want XXXX-XXXX from BCDFGHJKLMNPQRSTVWXZ", r.UserCode)
	}
	if r.VerificationURI != verificationURI || r.VerificationURIComplete != verificationURI+"?user_code="+r.UserCode {
		t.Errorf("verification URIs %q, %q", r.VerificationURI, r.VerificationURIComplete)
	}
	if r.ExpiresIn != 600 || r.Interval != 5 {
		t.Errorf("expires_in %d, interval %d; want 600 and 5", r.ExpiresIn, r.Interval)
	}
	// Without scope: every scope the client may ask for.
	req, err := e.grant.Lookup(context.Background(), r.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.Scopes, []string{"chargers:read", "energy:read"}) || req.Client.ID != "tv" {
		t.Errorf("request %+v: want tv with its two scopes", req)
	}
	// Two requests get different codes.
	if other := e.start(t, "energy:read"); other.UserCode == r.UserCode || other.DeviceCode == r.DeviceCode {
		t.Error("two device authorizations share a code")
	}

	short := newDeviceE2E(t, 90*time.Second)
	if r := short.start(t, "chargers:read"); r.ExpiresIn != 90 {
		t.Errorf("device_code_ttl 90s: expires_in %d", r.ExpiresIn)
	}
}

func TestDeviceStartRefused(t *testing.T) {
	e := newDeviceE2E(t, 0)
	ctx := context.Background()
	tests := []struct {
		name   string
		client *oauth.Client
		scope  string
		code   string
	}{
		{"RFC 8628 3.1 client without the device grant", e.app, "", "unauthorized_client"},
		{"RFC 6749 3.3 scope the client may not ask for", e.tv, "sessions:read", "invalid_scope"},
		{"RFC 6749 3.3 undeclared scope", e.tv, "chargers:write", "invalid_scope"},
		{"no client", nil, "", "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, oerr := e.grant.Start(ctx, tt.client, tt.scope, verificationURI); oerr == nil || oerr.Code != tt.code {
				t.Errorf("Start = %v, want %s", oerr, tt.code)
			}
		})
	}
}

// The whole grant: pending until the user approves, then one token
// response, then invalid_grant; the tokens work, the consent is recorded,
// and the metrics and audit log hear of it once, with no code in them.
func TestDeviceApproveFlow(t *testing.T) {
	e := newDeviceE2E(t, 0)
	ctx := context.Background()
	r := e.start(t, "chargers:read")
	e.pollError(t, e.tv, r.DeviceCode, "authorization_pending")

	// RFC 8628 6.1: typed in lower case, without the dash.
	typed := strings.ToLower(strings.ReplaceAll(r.UserCode, "-", ""))
	req, err := e.grant.Lookup(ctx, "  "+typed+" ")
	if err != nil {
		t.Fatalf("Lookup(%q): %v", typed, err)
	}
	if req.Client.ID != "tv" || req.Client.Name != "Living Room TV" || req.UserCode != r.UserCode || !slices.Equal(req.Scopes, []string{"chargers:read"}) {
		t.Errorf("request %+v", req)
	}
	e.clk.Advance(6 * time.Second)
	e.decide(t, typed, "alice", true)
	if _, err := e.grant.Lookup(ctx, r.UserCode); !errors.Is(err, oauth.ErrUnknownUserCode) {
		t.Errorf("Lookup after approval: %v, want ErrUnknownUserCode", err)
	}
	if _, err := e.grant.Decide(ctx, r.UserCode, "mallory", false); !errors.Is(err, oauth.ErrUnknownUserCode) {
		t.Errorf("second decision: %v, want ErrUnknownUserCode", err)
	}

	tr, oerr := e.grant.Poll(ctx, e.tv, r.DeviceCode)
	if oerr != nil {
		t.Fatalf("poll after approval: %v", oerr)
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.Scope != "chargers:read" ||
		!strings.HasPrefix(tr.AccessToken, "tga_") || !strings.HasPrefix(tr.RefreshToken, "tgr_") {
		t.Errorf("token response %+v", tr)
	}
	p, err := e.val.Validate(ctx, tr.AccessToken)
	if err != nil || p.UserID != "alice" || p.ClientID != "tv" || !slices.Equal(p.Scopes, []string{"chargers:read"}) {
		t.Errorf("access token: %+v, %v", p, err)
	}
	if _, oerr := e.grant.Auth.Refresh(ctx, e.tv, tr.RefreshToken, ""); oerr != nil {
		t.Errorf("refreshing the device grant's tokens: %v", oerr)
	}
	e.pollError(t, e.tv, r.DeviceCode, "invalid_grant")

	granted, err := e.store.GrantedScopes(ctx, "alice", "tv")
	if err != nil || !slices.Equal(granted, []string{"chargers:read"}) {
		t.Errorf("consent recorded: %v, %v", granted, err)
	}
	if n := e.obs.issued[oauth.GrantDeviceCode]; n != 1 {
		t.Errorf("tokens issued counted %d times for the device grant, want 1", n)
	}
	for _, msg := range []string{oauth.AuditAuthorizationGranted, oauth.AuditTokenIssued} {
		evs := e.obs.withMessage(msg)
		if len(evs) != 1 || evs[0].UserID != "alice" || evs[0].ClientID != "tv" || evs[0].Grant != oauth.GrantDeviceCode {
			t.Errorf("audit %q: %+v, want one event for alice, tv, device_code", msg, evs)
		}
	}
	dump := fmt.Sprintf("%+v", e.obs.events)
	for _, secret := range []string{r.DeviceCode, r.UserCode, strings.ReplaceAll(r.UserCode, "-", ""), tr.AccessToken, tr.RefreshToken} {
		if strings.Contains(dump, secret) {
			t.Errorf("the audit events reveal %q", secret)
		}
	}
}

// RFC 8628 3.5: slow_down when polled sooner than the interval, and the
// interval grows by 5 s for every later poll.
func TestDeviceSlowDown(t *testing.T) {
	e := newDeviceE2E(t, 0)
	r := e.start(t, "chargers:read")
	e.pollError(t, e.tv, r.DeviceCode, "authorization_pending")
	e.clk.Advance(time.Second)
	if oerr := e.pollError(t, e.tv, r.DeviceCode, "slow_down"); !strings.Contains(oerr.Description, "10 seconds") {
		t.Errorf("slow_down description %q: want the new interval, 10 seconds", oerr.Description)
	}
	// 9 s later: within the new 10 s interval.
	e.clk.Advance(9 * time.Second)
	if oerr := e.pollError(t, e.tv, r.DeviceCode, "slow_down"); !strings.Contains(oerr.Description, "15 seconds") {
		t.Errorf("slow_down description %q: want 15 seconds", oerr.Description)
	}
	// Polled at the interval: pending again, and the interval stays.
	e.clk.Advance(15 * time.Second)
	e.pollError(t, e.tv, r.DeviceCode, "authorization_pending")
	e.clk.Advance(14 * time.Second)
	e.pollError(t, e.tv, r.DeviceCode, "slow_down")
}

// RFC 8628 3.5: expired_token once expires_in has passed; the user code
// can no longer be found or decided.
func TestDeviceExpiry(t *testing.T) {
	e := newDeviceE2E(t, 0)
	ctx := context.Background()
	r := e.start(t, "chargers:read")
	approved := e.start(t, "chargers:read")
	e.decide(t, approved.UserCode, "alice", true)
	e.clk.Advance(10 * time.Minute)
	e.pollError(t, e.tv, r.DeviceCode, "expired_token")
	e.pollError(t, e.tv, approved.DeviceCode, "expired_token")
	if _, err := e.grant.Lookup(ctx, r.UserCode); !errors.Is(err, oauth.ErrUnknownUserCode) {
		t.Errorf("Lookup after expiry: %v, want ErrUnknownUserCode", err)
	}
	if _, err := e.grant.Decide(ctx, r.UserCode, "alice", true); !errors.Is(err, oauth.ErrUnknownUserCode) {
		t.Errorf("Decide after expiry: %v, want ErrUnknownUserCode", err)
	}
}

// RFC 8628 3.5: access_denied (400, at the token endpoint) after the user
// denies, on every poll.
func TestDeviceDeny(t *testing.T) {
	e := newDeviceE2E(t, 0)
	r := e.start(t, "chargers:read")
	e.decide(t, r.UserCode, "alice", false)
	e.pollError(t, e.tv, r.DeviceCode, "access_denied")
	e.clk.Advance(time.Second)
	e.pollError(t, e.tv, r.DeviceCode, "access_denied")
	if evs := e.obs.withMessage(oauth.AuditAuthorizationDenied); len(evs) != 1 || evs[0].UserID != "alice" || evs[0].ClientID != "tv" {
		t.Errorf("audit: %+v, want one denial by alice", evs)
	}
	if granted, _ := e.store.GrantedScopes(context.Background(), "alice", "tv"); len(granted) != 0 {
		t.Errorf("a denial recorded consent to %v", granted)
	}
}

// A device code is its client's only: another client polling it gets
// invalid_grant, and that poll does not count as the owner's.
func TestDevicePollOtherClient(t *testing.T) {
	e := newDeviceE2E(t, 0)
	r := e.start(t, "chargers:read")
	e.pollError(t, e.tv2, r.DeviceCode, "invalid_grant")
	e.pollError(t, e.tv, r.DeviceCode, "authorization_pending")
	e.decide(t, r.UserCode, "alice", true)
	e.pollError(t, e.tv2, r.DeviceCode, "invalid_grant")
	if _, oerr := e.grant.Poll(context.Background(), e.tv, r.DeviceCode); oerr != nil {
		t.Errorf("the owner's poll after another client's: %v", oerr)
	}
	// A client without the grant cannot poll at all.
	if _, oerr := e.grant.Poll(context.Background(), e.app, r.DeviceCode); oerr == nil || oerr.Code != "unauthorized_client" {
		t.Errorf("poll by a client without the grant: %v, want unauthorized_client", oerr)
	}
}

func TestDevicePollMalformed(t *testing.T) {
	e := newDeviceE2E(t, 0)
	ctx := context.Background()
	if _, oerr := e.grant.Poll(ctx, e.tv, ""); oerr == nil || oerr.Code != "invalid_request" {
		t.Errorf("no device_code: %v, want invalid_request", oerr)
	}
	access, _, _ := oauth.NewToken(oauth.KindAccess)
	unknown, _, _ := oauth.NewToken(oauth.KindDevice)
	for _, code := range []string{"not-a-code", access, unknown} {
		e.pollError(t, e.tv, code, "invalid_grant")
	}
	for _, typed := range []string{"", "BCDF-GHJ", "AAAA-AAAA", "BCDF-GHJK"} {
		if _, err := e.grant.Lookup(ctx, typed); !errors.Is(err, oauth.ErrUnknownUserCode) {
			t.Errorf("Lookup(%q): %v, want ErrUnknownUserCode", typed, err)
		}
	}
}

// Racing polls after approval: exactly one gets the tokens.
func TestDeviceRacingPolls(t *testing.T) {
	e := newDeviceE2E(t, 0)
	r := e.start(t, "chargers:read")
	e.decide(t, r.UserCode, "alice", true)
	const racers = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		codes = map[string]int{}
	)
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			_, oerr := e.grant.Poll(context.Background(), e.tv, r.DeviceCode)
			mu.Lock()
			defer mu.Unlock()
			if oerr == nil {
				wins++
			} else {
				codes[oerr.Code]++
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || codes["invalid_grant"] != racers-1 {
		t.Errorf("%d polls got tokens and the others %v; want 1 and %d invalid_grant", wins, codes, racers-1)
	}
	if n := e.obs.issued[oauth.GrantDeviceCode]; n != 1 {
		t.Errorf("tokens issued counted %d times, want 1", n)
	}
}

// RFC 9449 5: a DPoP proof on the poll that issues the tokens binds the
// access token, and, the device being a public client, the refresh family
// too: a refresh then needs the same key.
func TestDevicePollBindsDPoPKey(t *testing.T) {
	const key, other = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	e := newDeviceE2E(t, 0)
	ctx := context.Background()
	r := e.start(t, "chargers:read")
	e.clk.Advance(6 * time.Second)
	e.decide(t, r.UserCode, "alice", true)

	tr, oerr := e.grant.PollFor(ctx, e.tv, r.DeviceCode, oauth.TokenExtras{DPoPKey: key})
	if oerr != nil {
		t.Fatalf("poll: %v", oerr)
	}
	if tr.TokenType != "DPoP" {
		t.Errorf("token_type %q, want DPoP", tr.TokenType)
	}
	if p, err := e.val.Validate(ctx, tr.AccessToken); err != nil || p.DPoPKey != key {
		t.Errorf("access token: %+v, %v; want bound to the proof's key", p, err)
	}
	for _, k := range []string{"", other} {
		if _, oerr := e.grant.Auth.RefreshFor(ctx, e.tv, tr.RefreshToken, "", oauth.TokenExtras{DPoPKey: k}); oerr == nil || oerr.Code != "invalid_grant" {
			t.Errorf("refresh with key %q: %v, want invalid_grant", k, oerr)
		}
	}
	if _, oerr := e.grant.Auth.RefreshFor(ctx, e.tv, tr.RefreshToken, "", oauth.TokenExtras{DPoPKey: key}); oerr != nil {
		t.Errorf("refresh with the family's key: %v", oerr)
	}
}
