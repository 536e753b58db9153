package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// errBodyTooLarge is returned by readBody for a body above maxBodyBytes.
var errBodyTooLarge = errors.New("request body too large")

// bodyParams are the single-valued parameters of a request body.
type bodyParams map[string]string

// readBody is the one way an endpoint reads a request body: at most
// maxBodyBytes (larger bodies get 413), refusing at once a declared
// Content-Length above the limit and, for a body of unknown length
// (chunked), stopping at the first byte past it. Every endpoint calls it
// before it changes any state, also those that use no body, so that an
// oversized one is refused whatever its framing. The error is
// errBodyTooLarge or an *oauth.Error; writeParamsError answers both.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, oauth.ErrInvalidRequest.WithDescription("the request body cannot be read")
	}
	return body, nil
}

// readParams reads the parameters of a token, revocation or introspection
// request from the body only (the query string is ignored). The body is
// application/x-www-form-urlencoded (RFC 6749 4.1.3, RFC 7009 2.1, RFC 7662
// 2.1) or a JSON object of strings, which these endpoints take as well. A
// parameter given twice is invalid_request (RFC 6749 3.1). The error is
// errBodyTooLarge or an *oauth.Error.
func readParams(w http.ResponseWriter, r *http.Request) (bodyParams, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case len(bytes.TrimSpace(body)) == 0 && r.Header.Get("Content-Type") == "":
		return bodyParams{}, nil
	case err != nil:
		return nil, oauth.ErrInvalidRequest.WithDescription("the Content-Type header cannot be parsed")
	case mt == "application/x-www-form-urlencoded":
		return parseFormParams(body)
	case mt == "application/json":
		return parseJSONParams(body)
	}
	return nil, oauth.ErrInvalidRequest.WithDescription("the body must be application/x-www-form-urlencoded or application/json")
}

// parseFormParams parses a form body, refusing repeated parameters (RFC 6749
// 3.1: "Request and response parameters MUST NOT be included more than once").
func parseFormParams(body []byte) (bodyParams, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauth.ErrInvalidRequest.WithDescription("the form body is malformed")
	}
	if err := checkValues(values); err != nil {
		return nil, err
	}
	out := make(bodyParams, len(values))
	for k, v := range values {
		if len(v) > 1 {
			return nil, oauth.ErrInvalidRequest.WithDescription("parameter " + printable(k) + " is given more than once")
		}
		out[k] = v[0]
	}
	return out, nil
}

// parseJSONParams parses a JSON object whose values are all strings,
// refusing a key given twice, which encoding/json would silently accept
// (the last one winning).
func parseJSONParams(body []byte) (bodyParams, error) {
	p, _, err := parseJSONParamsWithList(body, "")
	return p, err
}

// parseJSONParamsWithList is parseJSONParams where the value of listKey
// may also be an array of strings, returned apart (with a string value,
// as its one element): the JSON form of a parameter that may be given
// more than once.
func parseJSONParamsWithList(body []byte, listKey string) (bodyParams, []string, error) {
	var list []string
	malformed := oauth.ErrInvalidRequest.WithDescription("the JSON body must be one object of string values")
	// encoding/json would turn invalid UTF-8 into U+FFFD silently.
	if !utf8.Valid(body) {
		return nil, nil, oauth.ErrInvalidRequest.WithDescription("the JSON body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, malformed
	}
	out := bodyParams{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, malformed
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, malformed
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, nil, malformed
		}
		if _, dup := out[key]; dup || (key == listKey && list != nil) {
			return nil, nil, oauth.ErrInvalidRequest.WithDescription("parameter " + printable(key) + " is given more than once")
		}
		var vals []string
		if tok == json.Delim('[') && key == listKey {
			for dec.More() {
				if tok, err = dec.Token(); err != nil {
					return nil, nil, malformed
				}
				val, ok := tok.(string)
				if !ok {
					return nil, nil, malformed
				}
				vals = append(vals, val)
			}
			if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
				return nil, nil, malformed
			}
		} else {
			val, ok := tok.(string)
			if !ok {
				return nil, nil, malformed
			}
			vals = []string{val}
		}
		for _, val := range vals {
			if err := checkParam(key, val); err != nil {
				return nil, nil, err
			}
		}
		if key == listKey {
			list = append([]string{}, vals...)
			continue
		}
		out[key] = vals[0]
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, malformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, malformed
	}
	return out, list, nil
}

// printable keeps a client-supplied name short and printable in an error
// description.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// writeOAuthError writes an RFC 6749 5.2 error body with the error's status.
func writeOAuthError(w http.ResponseWriter, e *oauth.Error) error {
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	return writeJSON(w, e.Status, e)
}

// writeParamsError answers a readParams failure.
func writeParamsError(w http.ResponseWriter, err error) error {
	if errors.Is(err, errBodyTooLarge) {
		return writeJSON(w, http.StatusRequestEntityTooLarge, oauthError{"invalid_request", "request body too large"})
	}
	var oe *oauth.Error
	if errors.As(err, &oe) {
		return writeOAuthError(w, oe)
	}
	return writeOAuthError(w, oauth.ErrInvalidRequest)
}

// postOnly answers 405 for anything but POST (docs/reference.md) and reports
// whether the request may go on.
func postOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", "POST")
	_ = writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed; use POST"})
	return false
}
