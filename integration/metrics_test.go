package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/oauth2"
)

// startGatewayWithAdmin starts a gateway whose admin endpoint listens on a
// port of its own, and returns the admin endpoint's URL.
func startGatewayWithAdmin(t *testing.T, database, extra string) (*gateway, string) {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := newGateway(t, database, extra, "", func(c string) string {
		return strings.Replace(c, "admin off", "admin "+admin, 1)
	})
	g.start(t)
	return g, "http://" + admin
}

// metricSample is the scraped value of one series: a counter's value, or
// a histogram's sample count.
type metricSample map[string]float64

// scrapeMetrics reads the admin endpoint's /metrics and returns the
// tokengate series, keyed by name and labels as in the text format
// (caddy_tokengate_validations_total{result="ok"}).
func scrapeMetrics(t *testing.T, adminURL string) metricSample {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := metricSample{}
	for name, f := range families {
		if !strings.HasPrefix(name, "caddy_tokengate_") {
			continue
		}
		for _, m := range f.Metric {
			key := name + labelString(m.Label)
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func labelString(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// assertDeltas checks that every series moved by exactly the given amount
// between before and after, and every other tokengate series not at all.
func assertDeltas(t *testing.T, before, after metricSample, want map[string]float64) {
	t.Helper()
	for key := range want {
		if _, ok := after[key]; !ok {
			t.Errorf("series %s is not exported", key)
		}
	}
	for key, v := range after {
		if got := v - before[key]; got != want[key] {
			t.Errorf("%s moved by %v, want %v", key, got, want[key])
		}
	}
}

// TestMetrics runs a known sequence of events and reads the exact change
// of every tokengate series from Caddy's admin /metrics; then reloads and
// checks that nothing was reset and that counting goes on.
func TestMetrics(t *testing.T) {
	g, admin := startGatewayWithAdmin(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	chargers := g.base + "/functions/v1/api/chargers"
	before := scrapeMetrics(t, admin)

	personal := g.personalToken(t, "metrics-user") // a personal token issued
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+personal); r.status != 200 {
		t.Fatalf("first use: %d", r.status) // ok, a cache miss, a store look-up
	}
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+personal); r.status != 200 {
		t.Fatalf("second use: %d", r.status) // ok, a cache hit
	}
	if r := do(t, "POST", chargers, "", "Authorization", "Bearer "+personal); r.status != 403 {
		t.Fatalf("without chargers:write: %d", r.status) // insufficient_scope, a cache hit
	}
	if r := do(t, "GET", chargers, ""); r.status != 401 {
		t.Fatalf("no token: %d", r.status) // invalid
	}
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer tga_malformed"); r.status != 401 {
		t.Fatalf("malformed token: %d", r.status) // invalid, no cache involved
	}

	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "metrics-user", "home-app", homeRedirect, "chargers:read", verifier)
	_, refresh := exchangeCode(t, g, code, verifier) // issued: authorization_code; store: exchange
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if r := tokenRequest(t, g, form, basicAuth("home-app", homeSecret)...); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body) // issued: refresh_token; store: refresh
	}
	r := tokenRequest(t, g, form, basicAuth("home-app", homeSecret)...)
	expectOAuthError(t, r, 400, "invalid_grant") // a reuse; store: refresh
	r = tokenRequest(t, g, form, basicAuth("home-app", "wrong-secret")...)
	expectOAuthError(t, r, 401, "invalid_client") // a client authentication failure

	after := scrapeMetrics(t, admin)
	assertDeltas(t, before, after, map[string]float64{
		`caddy_tokengate_tokens_issued_total{grant="personal"}`:           1,
		`caddy_tokengate_tokens_issued_total{grant="authorization_code"}`: 1,
		`caddy_tokengate_tokens_issued_total{grant="refresh_token"}`:      1,
		`caddy_tokengate_validations_total{result="ok"}`:                  2,
		`caddy_tokengate_validations_total{result="insufficient_scope"}`:  1,
		`caddy_tokengate_validations_total{result="invalid"}`:             2,
		`caddy_tokengate_cache_misses_total`:                              1,
		`caddy_tokengate_cache_hits_total`:                                2,
		`caddy_tokengate_refresh_reuse_total`:                             1,
		`caddy_tokengate_client_auth_failures_total`:                      1,
		`caddy_tokengate_store_duration_seconds{op="personal"}`:           1,
		`caddy_tokengate_store_duration_seconds{op="validate"}`:           1,
		`caddy_tokengate_store_duration_seconds{op="exchange"}`:           1,
		`caddy_tokengate_store_duration_seconds{op="refresh"}`:            2,
	})

	// A reload (a changed config, so that Caddy does not skip it) keeps
	// every value and counts on.
	g.caddyfile = strings.Replace(g.caddyfile, "tokengate_endpoints", "tokengate_endpoints\n\trespond /reloaded 204", 1)
	loadCaddyfile(t, g.caddyfile)
	waitReady(t, g.base+"/reloaded")
	reloaded := scrapeMetrics(t, admin)
	assertDeltas(t, after, reloaded, nil)
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+personal); r.status != 200 {
		t.Fatalf("after reload: %d", r.status) // ok, a cache hit: the cache survived
	}
	assertDeltas(t, reloaded, scrapeMetrics(t, admin), map[string]float64{
		`caddy_tokengate_validations_total{result="ok"}`: 1,
		`caddy_tokengate_cache_hits_total`:               1,
	})
}
