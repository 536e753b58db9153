package oauth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
)

// benchDPoPProofs is how many distinct proofs a benchmark cycles through;
// the replay store is emptied (off the clock) each time round, since a
// proof can be accepted once only.
const benchDPoPProofs = 512

// benchmarkVerifyDPoPProof measures what a protected resource pays per
// request: a proof with ath, checked against the bound key.
func benchmarkVerifyDPoPProof(b *testing.B, alg string) {
	k := dpopKey(alg)
	const tok = "tgat_benchmark-access-token"
	proofs := make([]string, benchDPoPProofs)
	for i := range proofs {
		proofs[i] = k.Proof("GET", resourceURI, tok, dpoptest.At(dpopT0))
	}
	jkt := k.Thumbprint()
	v := NewDPoPVerifier(DPoPConfig{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(proofs) {
			b.StopTimer()
			v.seen = newSeenProofs(DefaultDPoPMaxProofs)
			i = 0
			b.StartTimer()
		}
		if err := v.VerifyBound(proofs[i], "GET", resourceURI+"?page=2", tok, jkt, dpopT0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyDPoPProofES256(b *testing.B) { benchmarkVerifyDPoPProof(b, "ES256") }
func BenchmarkVerifyDPoPProofRS256(b *testing.B) { benchmarkVerifyDPoPProof(b, "RS256") }
func BenchmarkVerifyDPoPProofEdDSA(b *testing.B) { benchmarkVerifyDPoPProof(b, "EdDSA") }

// benchmarkDPoPSignature measures the signature check alone, the floor under
// the proof benchmarks above: the rest is what the proof's rules cost.
func benchmarkDPoPSignature(b *testing.B, alg string) {
	k := dpopKey(alg)
	p := k.Proof("GET", resourceURI, "tgat_benchmark-access-token", dpoptest.At(dpopT0))
	key, _, _, err := proofKey(p)
	if err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(p, '.')
	sig, err := base64.RawURLEncoding.DecodeString(p[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	m := jwt.GetSigningMethod(alg)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Verify(p[:dot], sig, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDPoPSignatureES256(b *testing.B) { benchmarkDPoPSignature(b, "ES256") }
func BenchmarkDPoPSignatureRS256(b *testing.B) { benchmarkDPoPSignature(b, "RS256") }
func BenchmarkDPoPSignatureEdDSA(b *testing.B) { benchmarkDPoPSignature(b, "EdDSA") }
