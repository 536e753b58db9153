package oauth

import (
	"context"
	"time"
)

// Metrics counts what an operator watches. The Caddy side keeps the
// counters (Prometheus); the protocol only says when something happened.
// Implementations are called on every request (CacheHit), so they must be
// cheap, and safe for concurrent use.
type Metrics interface {
	CacheHit()
	CacheMiss()
	// TokenIssued counts one token response, however many tokens it holds.
	TokenIssued(grant Grant)
	// RefreshReuse counts one detected reuse of a rotated refresh token,
	// which revoked its family.
	RefreshReuse()
	// StoreCall records how long one store call took.
	StoreCall(op StoreOp, d time.Duration)
}

// Grant names how tokens were issued, in metrics and the audit log.
type Grant string

// The grants.
const (
	GrantAuthorizationCode Grant = "authorization_code"
	GrantRefreshToken      Grant = "refresh_token"
	GrantPersonal          Grant = "personal"
	GrantClientCredentials Grant = "client_credentials"
	// GrantDeviceCode is the device authorization grant (RFC 8628),
	// whose grant_type is GrantTypeDeviceCode.
	GrantDeviceCode Grant = "device_code"
)

// StoreOp names the store calls whose duration is recorded.
type StoreOp string

// The timed store calls.
const (
	OpValidate StoreOp = "validate"
	OpExchange StoreOp = "exchange"
	OpRefresh  StoreOp = "refresh"
	OpRevoke   StoreOp = "revoke"
	OpPersonal StoreOp = "personal"
)

// noMetrics counts nothing, for a component given no Metrics.
type noMetrics struct{}

func (noMetrics) CacheHit()                        {}
func (noMetrics) CacheMiss()                       {}
func (noMetrics) TokenIssued(Grant)                {}
func (noMetrics) RefreshReuse()                    {}
func (noMetrics) StoreCall(StoreOp, time.Duration) {}

// metricsOrNone returns m, or a Metrics that counts nothing when m is nil.
func metricsOrNone(m Metrics) Metrics {
	if m == nil {
		return noMetrics{}
	}
	return m
}

// timeStoreCall records the duration of the store call that started at
// start.
func timeStoreCall(m Metrics, op StoreOp, start time.Time) {
	m.StoreCall(op, time.Since(start))
}

// Auditor records security events, one each, for the audit log. The
// context is the request's, so that the Caddy side can add where the
// request came from. An event never carries a token, code, secret or a
// hash of one.
type Auditor interface {
	Audit(ctx context.Context, e AuditEvent)
}

// AuditEvent is one entry of the audit log. Fields that do not apply are
// empty.
type AuditEvent struct {
	// Message is one of the Audit* constants.
	Message  string
	UserID   string
	ClientID string
	Grant    Grant
	Scopes   []string
	// Warning marks events that call for attention (reuse detection).
	Warning bool
}

// The audit log's messages.
const (
	AuditAuthorizationGranted = "authorization granted"
	AuditAuthorizationDenied  = "authorization denied"
	AuditTokenIssued          = "token issued"
	AuditTokenRefreshed       = "token refreshed"
	AuditRefreshReuse         = "refresh token reuse detected"
	AuditTokenRevoked         = "token revoked"
	AuditPersonalActivated    = "personal token activated"
	AuditPersonalRotated      = "personal token rotated"
	AuditPersonalDeactivated  = "personal token deactivated"
	AuditClientAdded          = "client added"
	AuditClientUpdated        = "client updated"
	AuditClientRemoved        = "client removed"
	AuditClientSecretRotated  = "client secret rotated"
	AuditGrantRevoked         = "grant revoked"
	AuditUserRevoked          = "user revoked"
	AuditClientAuthFailed     = "client authentication failed"
)

// noAudit records nothing, for a component given no Auditor.
type noAudit struct{}

func (noAudit) Audit(context.Context, AuditEvent) {}

// auditorOrNone returns a, or an Auditor that records nothing when a is
// nil.
func auditorOrNone(a Auditor) Auditor {
	if a == nil {
		return noAudit{}
	}
	return a
}
