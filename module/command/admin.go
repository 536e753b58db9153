package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// maxAnswer bounds what is read of one admin API answer. The admin
// endpoint is trusted, but a wrong --address should not fill memory.
const maxAnswer = 32 << 20

// adminAPI sends requests to the tokengate routes of a running Caddy's
// admin endpoint.
type adminAPI struct {
	addr string
}

// apiError is an answer of the admin API with a status of 400 or above.
type apiError struct {
	Status int
	// Message is the "error" member of the answer's JSON, or the body
	// itself when it is not of that shape.
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// unreachableError says the admin endpoint did not answer at all.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach Caddy's admin endpoint at %s (is Caddy running, and is --address or --config right?): %v", e.addr, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// call sends one request and returns the body of a 2xx answer. body, when
// not nil, is sent as JSON.
func (a adminAPI) call(method, uri string, body any) ([]byte, error) {
	var reqBody io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		reqBody = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(a.addr, method, uri, make(http.Header), reqBody)
	if err != nil {
		return nil, a.classify(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return answer, nil
}

// refusedText is how caddycmd.AdminAPIRequest reports an answer of 400 or
// above: it closes the response and keeps only the status and the body in
// the error's text. The tests run it against a fake admin endpoint, so a
// change of this text in Caddy shows there.
var refusedText = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// classify turns an error of caddycmd.AdminAPIRequest into an *apiError
// (the endpoint answered with an error), an *unreachableError (nothing
// answered), or leaves it as it is (a bad address, for one).
func (a adminAPI) classify(err error) error {
	text := err.Error()
	if m := refusedText.FindStringSubmatch(text); m != nil {
		status, _ := strconv.Atoi(m[1])
		return &apiError{Status: status, Message: errorMessage(status, []byte(m[2]))}
	}
	if strings.HasPrefix(text, "performing request:") {
		return &unreachableError{addr: a.addr, err: err}
	}
	return err
}

// errorMessage is the message of an error answer: the "error" member of
// Caddy's admin error shape, or else the body as text.
func errorMessage(status int, body []byte) string {
	var shaped struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &shaped) == nil && shaped.Error != "" {
		return printable(shaped.Error)
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(status)
	}
	msg = printable(msg)
	if status == http.StatusNotFound {
		// Caddy's admin mux answers unknown paths in plain text: most
		// likely this Caddy was built without tokengate.
		msg += "; does this Caddy have tokengate built in?"
	}
	return msg
}
