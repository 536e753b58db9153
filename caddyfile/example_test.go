package caddyfile

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestExampleAdapts keeps the repository's Caddyfile.example, which the demo
// runs as it is, a valid config with no adapter warnings, and checks that it
// guards the three reference routes.
func TestExampleAdapts(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, nil)
	if err != nil {
		t.Fatalf("Caddyfile.example does not adapt: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w.String())
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Apps["tokengate"]; !ok {
		t.Errorf("no tokengate app in %s", out)
	}
	var guards int
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "tokengate" {
				guards++
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	_ = json.Unmarshal(out, &all)
	walk(all)
	if guards != 3 {
		t.Errorf("%d tokengate guards in the example, want 3 (chargers, sessions, energy)", guards)
	}
}
