package module

import (
	"context"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// auditLog writes the audit log: one line per security event, from the
// logger named tokengate.audit, so that an operator can send it somewhere
// of its own with a `log { include tokengate.audit }` block. Events carry
// ids, grants and scopes, never a token, code, secret or a hash of one.
type auditLog struct {
	logger *zap.Logger
}

// auditLoggerName is the audit logger's name under the app's logger
// (tokengate), so tokengate.audit in full.
const auditLoggerName = "audit"

// Audit implements oauth.Auditor. The remote address is the client IP as
// Caddy determined it (trusted_proxies respected), when ctx is a request's.
func (a auditLog) Audit(ctx context.Context, e oauth.AuditEvent) {
	if a.logger == nil {
		return // an app that was never provisioned
	}
	level := zapcore.InfoLevel
	if e.Warning {
		level = zapcore.WarnLevel
	}
	ce := a.logger.Check(level, e.Message)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 5)
	if e.UserID != "" {
		fields = append(fields, zap.String("user_id", e.UserID))
	}
	if e.ClientID != "" {
		fields = append(fields, zap.String("client_id", e.ClientID))
	}
	if e.Grant != "" {
		fields = append(fields, zap.String("grant", string(e.Grant)))
	}
	if len(e.Scopes) > 0 {
		fields = append(fields, zap.String("scope", strings.Join(e.Scopes, " ")))
	}
	if ip := requestClientIP(ctx); ip != "" {
		fields = append(fields, zap.String("remote_ip", ip))
	}
	ce.Write(fields...)
}

// requestClientIP returns the client IP Caddy determined for the request
// whose context ctx is, or "".
func requestClientIP(ctx context.Context) string {
	if ctx == nil || ctx.Value(caddyhttp.VarsCtxKey) == nil {
		return ""
	}
	ip, _ := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string)
	return ip
}

// Interface guards
var _ oauth.Auditor = auditLog{}
