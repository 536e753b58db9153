package module

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// accessLogName names a logger as Caddy's HTTP server names its access
// logger, so that the config's log blocks (`include http.log.access.log0`)
// route it as they route the server's own entries. It is not a module
// of its own; caddy.Context.Logger takes it for the name alone.
type accessLogName struct{}

func (accessLogName) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.log.access"}
}

// redactedValue replaces a token sent in the URL, in the access log.
const redactedValue = "REDACTED"

// logRefusedURLToken keeps a token sent in the URL out of Caddy's access
// log. Caddy copies the request for its access log before any handler
// runs, so no handler can change what that entry will say; instead this
// tells the server to skip its entry for this request and writes one of
// the same shape itself, to the same loggers, with the values of token and
// access_token replaced. Call it after the refusal was written to w.
func logRefusedURLToken(accessLog *zap.Logger, w http.ResponseWriter, r *http.Request, status, size int) {
	logRedactedRequest(accessLog, w.Header(), r, status, size, redactQueryTokens)
}

// logRedactedRequest is logRefusedURLToken for any request whose query
// holds something that must not be logged: the entry carries the query as
// redact leaves it, and the response headers header.
func logRedactedRequest(accessLog *zap.Logger, header http.Header, r *http.Request, status, size int, redact func(rawQuery string) string) {
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if accessLog == nil || srv == nil || srv.Logs == nil {
		return // access logging is off
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	names, ok := accessLoggerNames(srv.Logs, strings.ToLower(host))
	if !ok {
		return
	}
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)

	// The request as it arrived: a rewrite before the guard may have
	// changed its URI (Caddy keeps the method, URI and URL of the
	// original, and the rest is as it came).
	logged := r.Clone(r.Context())
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		logged.Method, logged.RequestURI = orig.Method, orig.RequestURI
		if orig.URL != nil {
			u := *orig.URL
			logged.URL = &u
		}
	}
	logged.URL.RawQuery = redact(logged.URL.RawQuery)
	logged.RequestURI = redactRequestURI(logged.RequestURI, redact)
	var duration time.Duration
	if start, ok := caddyhttp.GetVar(r.Context(), "start_time").(time.Time); ok {
		duration = time.Since(start)
	}
	fields := []zap.Field{
		zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: logged, ShouldLogCredentials: srv.Logs.ShouldLogCredentials}),
		zap.Int("bytes_read", 0),
		zap.String("user_id", ""), // refused: nobody was authenticated
		zap.Duration("duration", duration),
		zap.Int("size", size),
		zap.Int("status", status),
		zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: header, ShouldLogCredentials: srv.Logs.ShouldLogCredentials}),
	}
	for _, name := range names {
		logger := accessLog
		if name != "" {
			logger = accessLog.Named(name)
		}
		if ce := logger.Check(zap.InfoLevel, "handled request"); ce != nil {
			ce.Write(fields...)
		}
	}
}

// accessLoggerNames finds, as Caddy's server does, whether requests for
// host are access-logged and under which logger names ("" is the default
// access logger).
func accessLoggerNames(logs *caddyhttp.ServerLogConfig, host string) ([]string, bool) {
	if names, ok := logs.LoggerNames[host]; ok {
		return names, true
	}
	for pattern, names := range logs.LoggerNames {
		if certmagic.MatchWildcard(host, pattern) {
			return names, true
		}
	}
	for _, skip := range logs.SkipHosts {
		if certmagic.MatchWildcard(host, skip) {
			return nil, false
		}
	}
	if logs.SkipUnmappedHosts {
		return nil, false
	}
	return []string{logs.DefaultLoggerName}, true
}

// redactRequestURI redacts the query part of a request target (or of a
// URL) with redact.
func redactRequestURI(uri string, redact func(rawQuery string) string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	return path + "?" + redact(query)
}

// redactQueryTokens replaces the values of token and access_token in a raw
// query, keeping everything else as it was sent.
func redactQueryTokens(rawQuery string) string {
	return redactQuery(rawQuery, "token", "access_token")
}

// redactQuery replaces the values of the parameters names in a raw query,
// keeping everything else as it was sent.
func redactQuery(rawQuery string, names ...string) string {
	if rawQuery == "" {
		return rawQuery
	}
	pairs := strings.Split(rawQuery, "&")
	for i, pair := range pairs {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err != nil || slices.Contains(names, k) {
			// A key that cannot be unescaped may still be one of them.
			pairs[i] = key + "=" + redactedValue
		}
	}
	return strings.Join(pairs, "&")
}
