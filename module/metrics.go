package module

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// gatewayMetrics are tokengate's Prometheus collectors. They are built once
// per process and registered in every config's registry, so that a reload
// neither resets them nor registers them twice (as reverse_proxy's are).
// No label carries a user, a client or a token: every label has a fixed,
// small set of values.
type gatewayMetrics struct {
	validations        *prometheus.CounterVec
	cacheHits          prometheus.Counter
	cacheMisses        prometheus.Counter
	tokensIssued       *prometheus.CounterVec
	refreshReuse       prometheus.Counter
	clientAuthFailures prometheus.Counter
	rateLimited        prometheus.Counter
	storeDuration      *prometheus.HistogramVec

	// The children of the vectors, looked up once: the guard counts every
	// request.
	validationResults [validationResults]prometheus.Counter
	issuedByGrant     map[oauth.Grant]prometheus.Counter
	durationByOp      map[oauth.StoreOp]prometheus.Observer
}

// validationResult is a value of validations_total's result label.
type validationResult int

const (
	validationOK validationResult = iota
	validationInvalid
	validationInsufficientScope
	validationUnavailable
	validationResults // how many there are
)

var validationResultLabels = [validationResults]string{"ok", "invalid", "insufficient_scope", "unavailable"}

var (
	metricsOnce sync.Once
	metrics     *gatewayMetrics
)

// tokengateMetrics returns the process's collectors, building them on first
// use.
func tokengateMetrics() *gatewayMetrics {
	metricsOnce.Do(func() { metrics = newGatewayMetrics() })
	return metrics
}

func newGatewayMetrics() *gatewayMetrics {
	const ns, sub = "caddy", "tokengate"
	m := &gatewayMetrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "validations_total",
			Help: "Bearer token validations by the guard, by result.",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_hits_total",
			Help: "Token validations answered from the in-memory cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_misses_total",
			Help: "Token validations that asked the store.",
		}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "tokens_issued_total",
			Help: "Token responses, by grant; a response with several tokens counts once.",
		}, []string{"grant"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "refresh_reuse_total",
			Help: "Rotated refresh tokens presented again; each revoked its family.",
		}),
		clientAuthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "client_auth_failures_total",
			Help: "Failed client authentications at the token, revocation and introspection endpoints.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rate_limited_total",
			Help: "Requests answered 429 because their address failed too often.",
		}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "store_duration_seconds",
			Help:    "How long store calls took, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
	}
	for r, label := range validationResultLabels {
		m.validationResults[r] = m.validations.WithLabelValues(label)
	}
	m.issuedByGrant = map[oauth.Grant]prometheus.Counter{}
	for _, g := range []oauth.Grant{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantPersonal, oauth.GrantClientCredentials, oauth.GrantDeviceCode} {
		m.issuedByGrant[g] = m.tokensIssued.WithLabelValues(string(g))
	}
	m.durationByOp = map[oauth.StoreOp]prometheus.Observer{}
	for _, op := range []oauth.StoreOp{oauth.OpValidate, oauth.OpExchange, oauth.OpRefresh, oauth.OpRevoke, oauth.OpPersonal} {
		m.durationByOp[op] = m.storeDuration.WithLabelValues(string(op))
	}
	return m
}

// register adds the collectors to a config's registry; those already there
// (the same collectors, registered by an earlier config or another module
// of this one) are kept.
func (m *gatewayMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		m.validations, m.cacheHits, m.cacheMisses, m.tokensIssued,
		m.refreshReuse, m.clientAuthFailures, m.rateLimited, m.storeDuration,
	} {
		var already prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !(errors.As(err, &already) && already.ExistingCollector == c) {
			return err
		}
	}
	return nil
}

// validation counts one guard decision. A nil *gatewayMetrics (a handler
// built without its app, in tests) counts nothing, here and below.
func (m *gatewayMetrics) validation(r validationResult) {
	if m != nil {
		m.validationResults[r].Inc()
	}
}

// clientAuthFailure counts one failed client authentication.
func (m *gatewayMetrics) clientAuthFailure() {
	if m != nil {
		m.clientAuthFailures.Inc()
	}
}

// rateLimit counts one 429 answer.
func (m *gatewayMetrics) rateLimit() {
	if m != nil {
		m.rateLimited.Inc()
	}
}

// CacheHit implements oauth.Metrics.
func (m *gatewayMetrics) CacheHit() {
	if m != nil {
		m.cacheHits.Inc()
	}
}

// CacheMiss implements oauth.Metrics.
func (m *gatewayMetrics) CacheMiss() {
	if m != nil {
		m.cacheMisses.Inc()
	}
}

// TokenIssued implements oauth.Metrics.
func (m *gatewayMetrics) TokenIssued(g oauth.Grant) {
	if m == nil {
		return
	}
	if c, ok := m.issuedByGrant[g]; ok {
		c.Inc()
	}
}

// RefreshReuse implements oauth.Metrics.
func (m *gatewayMetrics) RefreshReuse() {
	if m != nil {
		m.refreshReuse.Inc()
	}
}

// StoreCall implements oauth.Metrics.
func (m *gatewayMetrics) StoreCall(op oauth.StoreOp, d time.Duration) {
	if m == nil {
		return
	}
	if o, ok := m.durationByOp[op]; ok {
		o.Observe(d.Seconds())
	}
}

// Interface guards
var _ oauth.Metrics = (*gatewayMetrics)(nil)
