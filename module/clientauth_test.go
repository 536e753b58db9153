package module

import (
	"encoding/base64"
	"testing"
)

func basicHeader(raw string) []string {
	return []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

func TestParseClientCredentials(t *testing.T) {
	tests := []struct {
		name        string
		header      []string
		body        bodyParams
		wantErr     string
		id, secret  string
		secretGiven bool
		basic       bool
	}{
		{name: "basic", header: basicHeader("home-app:s3cret"), id: "home-app", secret: "s3cret", secretGiven: true, basic: true},
		{name: "basic form-urlencoded", header: basicHeader("my%3Aclient:p%40ss+word%2B"), id: "my:client", secret: "p@ss word+", secretGiven: true, basic: true},
		{name: "basic scheme case-insensitive", header: []string{"bAsIc " + base64.StdEncoding.EncodeToString([]byte("a:b"))}, id: "a", secret: "b", secretGiven: true, basic: true},
		{name: "basic empty secret is none", header: basicHeader("mobile:"), id: "mobile", basic: true},
		{name: "basic malformed base64", header: []string{"Basic !!!not-base64"}, wantErr: "invalid_client", basic: true},
		{name: "basic no colon", header: basicHeader("nocolon"), wantErr: "invalid_client", basic: true},
		{name: "basic bad escape", header: basicHeader("a%zz:b"), wantErr: "invalid_client", basic: true},
		{name: "basic empty id", header: basicHeader(":secret"), wantErr: "invalid_client", basic: true},
		{name: "bearer scheme", header: []string{"Bearer abc"}, wantErr: "invalid_client", basic: true},
		{name: "two headers", header: append(basicHeader("a:b"), basicHeader("a:b")...), wantErr: "invalid_request", basic: true},
		{name: "both methods", header: basicHeader("a:b"), body: bodyParams{"client_id": "a", "client_secret": "b"}, wantErr: "invalid_request", basic: true},
		{name: "basic and same body id", header: basicHeader("a:b"), body: bodyParams{"client_id": "a"}, id: "a", secret: "b", secretGiven: true, basic: true},
		{name: "basic and other body id", header: basicHeader("a:b"), body: bodyParams{"client_id": "c"}, wantErr: "invalid_request", basic: true},
		{name: "post", body: bodyParams{"client_id": "home-app", "client_secret": "s"}, id: "home-app", secret: "s", secretGiven: true},
		{name: "public", body: bodyParams{"client_id": "mobile"}, id: "mobile"},
		{name: "nothing", body: bodyParams{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = bodyParams{}
			}
			c, err := parseClientCredentials(tt.header, body)
			if tt.wantErr != "" {
				if err == nil || err.Code != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				if c.basic != tt.basic {
					t.Errorf("basic = %v", c.basic)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := clientCredentials{id: tt.id, secret: tt.secret, secretGiven: tt.secretGiven, basic: tt.basic}
			if c != want {
				t.Errorf("got %+v, want %+v", c, want)
			}
		})
	}
}
