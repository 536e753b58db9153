package module

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
)

func paramsRequest(contentType, body string) *http.Request {
	r := httptest.NewRequest("POST", "/oauth/token?grant_type=from-query", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestReadParams(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    bodyParams
		wantErr                 string
	}{
		{name: "form", contentType: "application/x-www-form-urlencoded", body: "grant_type=refresh_token&refresh_token=a%2Bb", want: bodyParams{"grant_type": "refresh_token", "refresh_token": "a+b"}},
		{name: "form charset", contentType: "application/x-www-form-urlencoded; charset=utf-8", body: "a=1", want: bodyParams{"a": "1"}},
		{name: "form duplicate", contentType: "application/x-www-form-urlencoded", body: "a=1&b=2&a=1", wantErr: "invalid_request"},
		{name: "form duplicate empty", contentType: "application/x-www-form-urlencoded", body: "a=&a=", wantErr: "invalid_request"},
		{name: "form malformed", contentType: "application/x-www-form-urlencoded", body: "a=%zz", wantErr: "invalid_request"},
		{name: "json", contentType: "application/json", body: `{"grant_type":"authorization_code","code":"x"}`, want: bodyParams{"grant_type": "authorization_code", "code": "x"}},
		{name: "json duplicate", contentType: "application/json", body: `{"code":"x","code":"y"}`, wantErr: "invalid_request"},
		{name: "json number", contentType: "application/json", body: `{"code":1}`, wantErr: "invalid_request"},
		{name: "json nested", contentType: "application/json", body: `{"code":{"a":"b"}}`, wantErr: "invalid_request"},
		{name: "json array", contentType: "application/json", body: `["a"]`, wantErr: "invalid_request"},
		{name: "json trailing", contentType: "application/json", body: `{"a":"b"}{}`, wantErr: "invalid_request"},
		{name: "json truncated", contentType: "application/json", body: `{"a":"b"`, wantErr: "invalid_request"},
		{name: "unknown media type", contentType: "text/plain", body: "a=1", wantErr: "invalid_request"},
		{name: "no body", want: bodyParams{}},
		{name: "body without type", body: "a=1", wantErr: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readParams(httptest.NewRecorder(), paramsRequest(tt.contentType, tt.body))
			if tt.wantErr != "" {
				var oe *oauth.Error
				if !errors.As(err, &oe) || oe.Code != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestReadParamsBodyLimit(t *testing.T) {
	// Many parameters, each within the 8 KiB a value may have.
	exact := padForm(t, url.Values{"a": {"1"}}, maxBodyBytes)
	if _, err := readParams(httptest.NewRecorder(), paramsRequest("application/x-www-form-urlencoded", exact)); err != nil {
		t.Fatalf("a body of exactly the limit: %v", err)
	}
	over := exact + "x"
	if _, err := readParams(httptest.NewRecorder(), paramsRequest("application/x-www-form-urlencoded", over)); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("declared length over the limit: %v", err)
	}
	// Without a Content-Length the reader itself stops at the limit.
	r := paramsRequest("application/x-www-form-urlencoded", over)
	r.ContentLength = -1
	if _, err := readParams(httptest.NewRecorder(), r); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("chunked body over the limit: %v", err)
	}
	w := httptest.NewRecorder()
	if err := writeParamsError(w, errBodyTooLarge); err != nil || w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer to a large body: %d %v", w.Code, err)
	}
}

func TestAppendQuery(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"https://a.example/cb", "https://a.example/cb?code=c&state=s%26t"},
		{"https://a.example/cb?x=1&y=%2F", "https://a.example/cb?x=1&y=%2F&code=c&state=s%26t"},
		{"https://a.example/cb?", "https://a.example/cb?code=c&state=s%26t"},
		{"com.example.mobile:/oauth", "com.example.mobile:/oauth?code=c&state=s%26t"},
	}
	for _, tt := range tests {
		if got := withQueryParams(tt.uri, "code", "c", "state", "s&t"); got != tt.want {
			t.Errorf("withQueryParams(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}
