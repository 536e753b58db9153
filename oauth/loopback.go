package oauth

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host (without port) names this machine:
// "localhost" in any letter case, or a loopback IP literal. Plain http is
// acceptable only to such hosts (RFC 8252 8.3).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
