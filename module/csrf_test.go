package module

import (
	"strings"
	"testing"
	"time"
)

func testPageParams() pageParams {
	return pageParams{
		ClientID:            "home-app",
		RedirectURI:         "https://home.example.com/callback",
		ResponseType:        "code",
		Scope:               "chargers:read sessions:read",
		State:               "xyz",
		CodeChallenge:       strings.Repeat("a", 43),
		CodeChallengeMethod: "S256",
	}
}

func TestConsentCSRF(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	p := testPageParams()
	tok := consentCSRFToken(key, "user-1", p, now.Add(consentCSRFTTL))
	if !checkConsentCSRF(key, "user-1", p, tok, now) {
		t.Fatal("a fresh token for the same user and request is refused")
	}
	if !checkConsentCSRF(key, "user-1", p, tok, now.Add(consentCSRFTTL-time.Second)) {
		t.Fatal("a token is refused before it expires")
	}

	changed := func(f func(*pageParams)) pageParams {
		q := p
		f(&q)
		return q
	}
	refused := []struct {
		name  string
		key   []byte
		user  string
		p     pageParams
		token string
		now   time.Time
	}{
		{"other user", key, "user-2", p, tok, now},
		{"changed scope", key, "user-1", changed(func(q *pageParams) { q.Scope = "chargers:read sessions:read energy:read" }), tok, now},
		{"changed state", key, "user-1", changed(func(q *pageParams) { q.State = "abc" }), tok, now},
		{"changed client", key, "user-1", changed(func(q *pageParams) { q.ClientID = "mobile" }), tok, now},
		{"changed redirect_uri", key, "user-1", changed(func(q *pageParams) { q.RedirectURI = "https://home.example.com/cb2" }), tok, now},
		{"changed code_challenge", key, "user-1", changed(func(q *pageParams) { q.CodeChallenge = strings.Repeat("b", 43) }), tok, now},
		{"moved between fields", key, "user-1", changed(func(q *pageParams) { q.Scope, q.State = q.Scope+"xyz", "" }), tok, now},
		{"expired", key, "user-1", p, tok, now.Add(consentCSRFTTL)},
		{"expired long ago", key, "user-1", p, tok, now.Add(time.Hour)},
		{"other key", []byte("fedcba9876543210fedcba9876543210"), "user-1", p, tok, now},
		{"empty", key, "user-1", p, "", now},
		{"no mac", key, "user-1", p, strings.SplitN(tok, ".", 2)[0] + ".", now},
		{"mac alone", key, "user-1", p, strings.SplitN(tok, ".", 2)[1], now},
		{"garbage", key, "user-1", p, "not.a-token", now},
		{"expiry moved later", key, "user-1", p, "1800000900." + strings.SplitN(tok, ".", 2)[1], now},
		{"expiry too far ahead", key, "user-1", p, consentCSRFToken(key, "user-1", p, now.Add(24*time.Hour)), now},
		{"expiry with a plus sign", key, "user-1", p, "+" + tok, now},
	}
	for _, c := range refused {
		if checkConsentCSRF(c.key, c.user, c.p, c.token, c.now) {
			t.Errorf("%s: token accepted", c.name)
		}
	}
}
