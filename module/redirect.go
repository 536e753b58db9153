package module

import (
	"net/url"
	"strings"
)

// withQueryParams appends name, value pairs to uri's query, in the order
// given, keeping the registered URI's own query byte for byte (RFC 6749
// 3.1.2). A redirect URI has no fragment (RFC 6749 3.1.2); any is dropped.
func withQueryParams(uri string, pairs ...string) string {
	base, _, _ := strings.Cut(uri, "#")
	var b strings.Builder
	b.WriteString(base)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		b.WriteString(sep)
		b.WriteString(url.QueryEscape(pairs[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(pairs[i+1]))
		sep = "&"
	}
	return b.String()
}
