package oauth

import "strings"

// sameHTU reports whether a proof's htu names the request URI (RFC 9449 4.3
// step 9): both without query and fragment, after the syntax-based and
// scheme-based normalisation of RFC 3986 6.2.2 and 6.2.3 that RFC 9449
// recommends. Only http and https URIs with a host match.
func sameHTU(htu, requestURI string) bool {
	a, ok := normalizeHTU(htu)
	if !ok {
		return false
	}
	b, ok := normalizeHTU(requestURI)
	return ok && a == b
}

// normalizeHTU returns u without query and fragment, with its scheme and host
// in lower case, a default or empty port dropped, an empty path made "/",
// percent-encodings in upper case with the unreserved characters decoded,
// and dot segments removed. A URI that needs none of it is returned as a
// substring, without allocating.
func normalizeHTU(u string) (string, bool) {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", false
	}
	scheme, rest := u[:i], u[i+3:]
	var defaultPort string
	switch {
	case strings.EqualFold(scheme, "https"):
		defaultPort = "443"
	case strings.EqualFold(scheme, "http"):
		defaultPort = "80"
	default:
		return "", false
	}
	authority, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		authority, path = rest[:j], rest[j:]
	}
	// A request URI has no userinfo; one in htu cannot match.
	if authority == "" || strings.IndexByte(authority, '@') >= 0 {
		return "", false
	}
	host, port, ok := splitHostPort(authority)
	if !ok {
		return "", false
	}
	clean := port != defaultPort && (port != "" || host == authority) && path != "" &&
		!hasUpper(scheme) && !hasUpper(host) && !needsPathWork(path)
	if clean {
		return u, true
	}

	var b strings.Builder
	b.Grow(len(u) + 1)
	b.WriteString(strings.ToLower(scheme))
	b.WriteString("://")
	b.WriteString(strings.ToLower(host))
	if port != "" && port != defaultPort {
		b.WriteByte(':')
		b.WriteString(port)
	}
	if path == "" {
		b.WriteByte('/')
	} else {
		p, ok := normalizePercent(path)
		if !ok {
			return "", false
		}
		b.WriteString(removeDotSegments(p))
	}
	return b.String(), true
}

// splitHostPort splits an authority without userinfo into host and port;
// port is "" when absent or empty ("host:" means the default port, RFC
// 3986 6.2.3).
func splitHostPort(a string) (host, port string, ok bool) {
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", false
		}
		host, a = a[:end+1], a[end+1:]
		if a == "" {
			return host, "", true
		}
		if a[0] != ':' {
			return "", "", false
		}
		port = a[1:]
	} else if i := strings.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	} else {
		host = a
	}
	// Only an IP literal holds ':' or brackets (RFC 3986 3.2.2).
	if host == "" || host[0] != '[' && strings.ContainsAny(host, "[]") {
		return "", "", false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", "", false
		}
	}
	return host, port, true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// needsPathWork reports whether a path has percent-encodings or dot
// segments, the two things normalizePercent and removeDotSegments change.
func needsPathWork(p string) bool {
	if strings.IndexByte(p, '%') >= 0 {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// normalizePercent upper-cases the hex digits of each percent-encoding and
// decodes those of unreserved characters (RFC 3986 6.2.2.1, 6.2.2.2). A '%'
// not followed by two hex digits makes the path invalid.
func normalizePercent(p string) (string, bool) {
	if strings.IndexByte(p, '%') < 0 {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		v := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(v) {
			b.WriteByte(v)
		} else {
			const digits = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(digits[v>>4])
			b.WriteByte(digits[v&15])
		}
		i += 2
	}
	return b.String(), true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// isUnreserved reports whether c is an RFC 3986 2.3 unreserved character.
func isUnreserved(c byte) bool {
	return isBase64URL(c) || c == '.' || c == '~'
}

// removeDotSegments is RFC 3986 5.2.4 for an absolute path.
func removeDotSegments(in string) string {
	if !needsPathWork(in) {
		return in
	}
	out := make([]string, 0, strings.Count(in, "/"))
	for seg := range strings.SplitSeq(in[1:], "/") {
		switch seg {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	// A path ending in a dot segment keeps its trailing slash.
	if strings.HasSuffix(in, "/.") || strings.HasSuffix(in, "/..") {
		out = append(out, "")
	}
	return "/" + strings.Join(out, "/")
}
