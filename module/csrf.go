package module

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// consentCSRFTTL is how long a consent page's form stays valid (its CSRF
// token is bound to the user and the request).
const consentCSRFTTL = 10 * time.Minute

// consentKeyPurpose names the key, derived from the store's server key,
// that signs consent CSRF tokens. Every instance sharing a store derives
// the same key, so a consent page served by one instance may be posted to
// another, and across a restart.
const consentKeyPurpose = "consent csrf v1"

// consentCSRFToken returns a CSRF token for the consent form of user on
// request p, expiring at exp: "<unix exp>.<base64url HMAC-SHA256>", the MAC
// over the user id, every request parameter and the expiry, each
// length-prefixed so that no two different inputs share a MAC input.
func consentCSRFToken(key []byte, user string, p pageParams, exp time.Time) string {
	e := exp.Unix()
	return strconv.FormatInt(e, 10) + "." + base64.RawURLEncoding.EncodeToString(consentCSRFMAC(key, user, p, e))
}

// checkConsentCSRF reports whether token is a valid, unexpired CSRF token
// for user and p at now. An expiry further ahead than consentCSRFTTL (plus
// a minute for clock skew between instances) is refused too.
func checkConsentCSRF(key []byte, user string, p pageParams, token string, now time.Time) bool {
	return checkFormToken(token, now, func(exp int64) []byte { return consentCSRFMAC(key, user, p, exp) })
}

// checkFormToken checks a "<unix exp>.<base64url MAC>" form token at now
// against mac, which computes the MAC for an expiry: unexpired, not
// further ahead than consentCSRFTTL plus a minute, and the MAC equal.
func checkFormToken(token string, now time.Time, mac func(exp int64) []byte) bool {
	expText, macText, ok := strings.Cut(token, ".")
	if !ok || len(expText) == 0 || len(expText) > 19 {
		return false
	}
	e, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || strconv.FormatInt(e, 10) != expText {
		return false
	}
	exp := time.Unix(e, 0)
	if !now.Before(exp) || exp.After(now.Add(consentCSRFTTL+time.Minute)) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(macText)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(e))
}

func consentCSRFMAC(key []byte, user string, p pageParams, exp int64) []byte {
	values := p.values()
	fields := append([]string{user}, values[:]...)
	for _, res := range p.Resources {
		fields = append(fields, "resource", res)
	}
	return formMAC(key, "tokengate consent", exp, fields...)
}

// formMAC is HMAC-SHA256 under key over label, each of fields and exp,
// the strings each length-prefixed so that no two different inputs share
// a MAC input; label keeps the tokens of different forms apart.
func formMAC(key []byte, label string, exp int64, fields ...string) []byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	field(label)
	for _, f := range fields {
		field(f)
	}
	binary.BigEndian.PutUint64(n[:], uint64(exp))
	m.Write(n[:])
	return m.Sum(nil)
}
