package caddyfile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// update rewrites the JSON half of every testdata file from the adapter's
// output. The result is a golden file: read the diff before committing it.
var update = flag.Bool("update", false, "rewrite the expected JSON in testdata/*.caddyfiletest")

// separator splits a .caddyfiletest file into the Caddyfile and the JSON
// it must adapt to, as in Caddy's caddytest/integration/caddyfile_adapt.
const separator = "----------"

// adapt runs the caddyfile adapter as `caddy adapt` does.
func adapt(t *testing.T, caddyfile string) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	return adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
}

// unformatted is the only warning a test file may cause, and only the full
// reference example, whose comments are aligned by hand rather than as
// caddy fmt would write them.
const (
	unformatted     = "Caddyfile input is not formatted"
	specExampleFile = "spec_example.caddyfiletest"
)

// normalizeJSON re-encodes JSON with sorted keys and tab indentation, so
// that the comparison ignores whitespace and key order.
func normalizeJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, raw)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(buf.String())
}

func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddyfiletest files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, expected, ok := strings.Cut(strings.ReplaceAll(string(data), "\r\n", "\n"), separator)
			if !ok {
				t.Fatalf("no %s line between the Caddyfile and the JSON", separator)
			}
			caddyfile = strings.TrimSpace(caddyfile) + "\n"

			out, warnings, err := adapt(t, caddyfile)
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			for _, w := range warnings {
				if filepath.Base(file) == specExampleFile && strings.Contains(w.Message, unformatted) {
					continue
				}
				t.Errorf("warning: %s:%d: %s", w.File, w.Line, w.Message)
			}
			got := normalizeJSON(t, out)

			if *update {
				if err := os.WriteFile(file, []byte(caddyfile+separator+"\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(expected) == "" {
				t.Fatalf("no expected JSON; got:\n%s", got)
			}
			if want := normalizeJSON(t, []byte(expected)); got != want {
				t.Errorf("adapted JSON differs\n--- got:\n%s\n--- want:\n%s", got, want)
			}
		})
	}
}
