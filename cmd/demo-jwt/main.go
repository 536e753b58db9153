// Command demo-jwt prints a user JWT for the demo (scripts/demo): the kind
// of token an identity provider such as Supabase Auth gives a signed-in
// user, which tokengate's users block accepts at the authorize and
// api_token endpoints.
//
// The JWT is signed HS256 with the secret in DEMO_JWT_SECRET (default
// "tokengate-demo-jwt-secret-do-not-use-in-production", the same default
// as scripts/demo) and carries sub, aud "authenticated", role
// "authenticated", iat and exp.
//
// Usage:
//
//	go run ./cmd/demo-jwt [-sub demo-user] [-ttl 24h] [-aud authenticated]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// defaultSecret must stay equal to the default in scripts/demo.
const defaultSecret = "tokengate-demo-jwt-secret-do-not-use-in-production"

func main() {
	sub := flag.String("sub", "demo-user", "the user id (sub claim)")
	ttl := flag.Duration("ttl", 24*time.Hour, "how long the JWT is valid")
	aud := flag.String("aud", "authenticated", "the aud claim")
	role := flag.String("role", "authenticated", "the role claim")
	flag.Parse()
	if flag.NArg() != 0 || *sub == "" || *ttl <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	secret := os.Getenv("DEMO_JWT_SECRET")
	if secret == "" {
		secret = defaultSecret
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":  *sub,
		"aud":  *aud,
		"role": *role,
		"iat":  now.Unix(),
		"exp":  now.Add(*ttl).Unix(),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-jwt:", err)
		os.Exit(1)
	}
	fmt.Println(signed)
}
