package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The JWT access token phase runs after the others, since it needs the
// config with access_token_format jwt, which would make the token
// endpoint variant sign a JWT on every refresh. The config is reloaded
// with that one option added (same store and cache), and three variants
// take turns, rounds as above:
//
//   - plain again, for scale;
//   - guard with cached opaque access token: the guarded route with a tga_
//     OAuth access token of the bench client, issued before the reload;
//   - guard with cached JWT access token: the same route with an RFC 9068
//     JWT access token issued after it, answered from the validation cache
//     (its jti found in the payload, the text's mark compared; no
//     signature check).

// jwtPhase holds the phase's variants.
type jwtPhase struct {
	plain, opaque, jwt *variant
}

const (
	jwtOpaqueName = "guard with cached opaque access token"
	jwtName       = "guard with cached JWT access token"
)

// measureJWT reloads Caddy with jwtConfig, mints a JWT access token and runs
// the phase; opaque is an access token minted before the reload.
func measureJWT(wrk string, o options, base, jwtConfig, opaque string) (*jwtPhase, error) {
	if err := loadCaddyfile(jwtConfig); err != nil {
		return nil, fmt.Errorf("reloading with access_token_format jwt: %w", err)
	}
	// The old config's listener may take a connection or two while it
	// closes: mint until an answer comes from the new one.
	var token string
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok, err := mintAccessToken(base, nil)
		if err == nil && strings.Count(tok, ".") == 2 {
			token = tok
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("the access token issued is not a JWT")
			}
			return nil, fmt.Errorf("minting a JWT access token: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := checkJWTClaims(token); err != nil {
		return nil, err
	}
	ph := &jwtPhase{
		plain:  &variant{name: "plain", path: "/plain", token: token, want: 200, note: "reverse_proxy only"},
		opaque: &variant{name: jwtOpaqueName, path: "/guarded", token: opaque, want: 200, note: "tokengate + reverse_proxy, tga_ access token, cached"},
		jwt:    &variant{name: jwtName, path: "/guarded", token: token, want: 200, note: "tokengate + reverse_proxy, RFC 9068 access token (signed with -signing-alg), cached"},
	}
	variants := ph.variants()
	for _, v := range variants {
		if err := check(base, v); err != nil {
			return nil, err
		}
	}
	fmt.Println()
	for _, v := range variants {
		if _, err := runVariant(wrk, "", o, o.warmup, base, v, false); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", v.name, err)
		}
	}
	for r := range o.rounds {
		for i := range variants {
			v := variants[(r+i)%len(variants)]
			res, err := runVariant(wrk, "", o, o.duration, base, v, false)
			if err != nil {
				return nil, fmt.Errorf("JWT phase, round %d, %s: %w", r+1, v.name, err)
			}
			v.result = append(v.result, res)
			fmt.Printf("round %d  %-37s %9.0f req/s  p50 %-9s p99 %-9s\n", r+1, v.name, res.rps, fmtDur(res.p50), fmtDur(res.p99))
		}
	}
	return ph, nil
}

func (ph *jwtPhase) variants() []*variant { return []*variant{ph.plain, ph.opaque, ph.jwt} }

// checkJWTClaims makes sure the token is what the phase means to measure:
// an at+jwt whose jti is a tgj_ id.
func checkJWTClaims(token string) error {
	parts := strings.Split(token, ".")
	var header struct {
		Typ string `json:"typ"`
	}
	var claims struct {
		JTI string `json:"jti"`
	}
	for i, into := range []any{&header, &claims} {
		raw, err := decodeSegment(parts[i])
		if err != nil || json.Unmarshal(raw, into) != nil {
			return errors.New("the JWT access token does not decode")
		}
	}
	if header.Typ != "at+jwt" || !strings.HasPrefix(claims.JTI, "tgj_") {
		return fmt.Errorf("the JWT access token has typ %q and no tgj_ jti", header.Typ)
	}
	return nil
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// markdown is the phase's section of bench-results.md.
func (ph *jwtPhase) markdown() string {
	var b strings.Builder
	plain, opaque, jwt := summarizeVariant(ph.plain), summarizeVariant(ph.opaque), summarizeVariant(ph.jwt)
	b.WriteString("## JWT access tokens\n\n")
	b.WriteString("After the rounds above, the config is reloaded with `access_token_format jwt` (same store and cache), and these take turns in rounds of their own. Both access tokens are the bench client's, both answered from the validation cache.\n\n")
	b.WriteString("| variant | route | req/s | p50 ms | p99 ms | vs plain | vs opaque access token |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range []summary{plain, opaque, jwt} {
		fmt.Fprintf(&b, "| %s | %s (%s) | %.0f [%.0f–%.0f] | %s | %s | %.3f× | %.3f× |\n",
			s.name, s.path, s.note, s.rps.med, s.rps.min, s.rps.max, fmtStat(s.p50), fmtStat(s.p99),
			s.rps.med/plain.rps.med, s.rps.med/opaque.rps.med)
	}
	fmt.Fprintf(&b, "\nJWT vs opaque access token, throughput: %.3f× (paired per round: %s).\n",
		jwt.rps.med/opaque.rps.med, pairedRatio(ph.jwt, ph.opaque))
	return b.String()
}

// target is the phase's line in the targets table.
func (ph *jwtPhase) target() target {
	jwt, opaque := summarizeVariant(ph.jwt), summarizeVariant(ph.opaque)
	return target{"guard with cached JWT access token vs cached opaque access token, throughput",
		fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", jwt.rps.med/opaque.rps.med, pairedRatio(ph.jwt, ph.opaque), jwt.p99.med, opaque.p99.med),
		"report", "—"}
}
