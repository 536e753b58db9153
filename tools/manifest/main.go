// Command manifest reads the production build manifest, xcaddy.json, and
// prints the arguments of the matching xcaddy build, one per line, for
// scripts/build-caddy.
//
// The manifest:
//
//	{
//	  "caddy_version": "v2.11.9",
//	  "xcaddy_version": "v0.4.7",
//	  "modules": [
//	    {"module": "github.com/tokengate/caddy-tokengate", "replace": "."}
//	  ]
//	}
//
// caddy_version is the Caddy release to build; it must equal the version
// of github.com/caddyserver/caddy/v2 that go.mod (beside the manifest)
// requires, so that the tests and the production build use the same Caddy.
// xcaddy_version must equal the xcaddy that tools/xcaddy/go.mod pins.
// Each entry of modules is one xcaddy --with: module is the Go import path
// of the plugin, version an optional published version, and replace an
// optional local directory, relative to the manifest, to build from
// instead (its version then defaults to v0.0.0, which xcaddy needs to skip
// asking the module proxy for a version list).
//
// Usage:
//
//	go run ./tools/manifest [-f xcaddy.json] [-output path] [-version v]
//
// -version builds the published version v of this repository's module
// (the one go.mod declares) instead of the local checkout.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Manifest is the content of xcaddy.json.
type Manifest struct {
	CaddyVersion  string   `json:"caddy_version"`
	XcaddyVersion string   `json:"xcaddy_version"`
	Modules       []Plugin `json:"modules"`
}

// Plugin is one module built into Caddy.
type Plugin struct {
	Module  string `json:"module"`
	Version string `json:"version,omitempty"`
	Replace string `json:"replace,omitempty"`
}

const (
	caddyModule  = "github.com/caddyserver/caddy/v2"
	xcaddyModule = "github.com/caddyserver/xcaddy"
)

func main() {
	file := flag.String("f", "xcaddy.json", "the build manifest")
	output := flag.String("output", "caddy", "where xcaddy writes the binary")
	version := flag.String("version", "", "build this published version of this repository's module instead of the local checkout")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "manifest: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	args, err := buildArgs(*file, *output, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for _, a := range args {
		fmt.Fprintln(w, a)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(1)
	}
}

// buildArgs returns the xcaddy arguments for the manifest at file.
func buildArgs(file, output, version string) ([]string, error) {
	m, err := readManifest(file)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	self, requires, err := readGoMod(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	if v := requires[caddyModule]; v != m.CaddyVersion {
		return nil, fmt.Errorf("%s: caddy_version is %s but go.mod requires %s %s; make them equal", file, m.CaddyVersion, caddyModule, v)
	}
	toolMod := filepath.Join(dir, "tools", "xcaddy", "go.mod")
	_, tools, err := readGoMod(toolMod)
	if err != nil {
		return nil, err
	}
	if v := tools[xcaddyModule]; v != m.XcaddyVersion {
		return nil, fmt.Errorf("%s: xcaddy_version is %s but %s pins %s; run `go get -tool %s/cmd/xcaddy@%s` in tools/xcaddy",
			file, m.XcaddyVersion, toolMod, v, xcaddyModule, m.XcaddyVersion)
	}
	out, err := filepath.Abs(output)
	if err != nil {
		return nil, err
	}

	args := []string{"build", m.CaddyVersion, "--output", out}
	usedVersion := false
	for _, p := range m.Modules {
		if version != "" && p.Module == self {
			p.Version, p.Replace = version, ""
			usedVersion = true
		}
		with := p.Module
		switch {
		case p.Replace != "":
			repl := p.Replace
			if !filepath.IsAbs(repl) {
				repl = filepath.Join(dir, repl)
			}
			v := p.Version
			if v == "" {
				v = "v0.0.0"
			}
			with += "@" + v + "=" + repl
		case p.Version != "":
			with += "@" + p.Version
		}
		args = append(args, "--with", with)
	}
	if version != "" && !usedVersion {
		return nil, fmt.Errorf("%s: no module entry for %s, so -version %s has nothing to apply to", file, self, version)
	}
	return args, nil
}

func readManifest(file string) (*Manifest, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if !strings.HasPrefix(m.CaddyVersion, "v") {
		return nil, fmt.Errorf("%s: caddy_version must be a version such as v2.11.9, not %q", file, m.CaddyVersion)
	}
	if !strings.HasPrefix(m.XcaddyVersion, "v") {
		return nil, fmt.Errorf("%s: xcaddy_version must be a version such as v0.4.7, not %q", file, m.XcaddyVersion)
	}
	if len(m.Modules) == 0 {
		return nil, fmt.Errorf("%s: modules is empty", file)
	}
	for i, p := range m.Modules {
		if p.Module == "" || strings.ContainsAny(p.Module, "@= \t") {
			return nil, fmt.Errorf("%s: modules[%d]: module must be a Go import path, not %q", file, i, p.Module)
		}
		if p.Version != "" && !strings.HasPrefix(p.Version, "v") {
			return nil, fmt.Errorf("%s: modules[%d]: version must start with v, not %q", file, i, p.Version)
		}
	}
	return &m, nil
}

// readGoMod returns a go.mod file's module path and the versions it
// requires. It understands the subset of the syntax that go mod edit writes.
func readGoMod(file string) (string, map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	var self string
	requires := make(map[string]string)
	inRequire := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "//")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch {
		case inRequire && fields[0] == ")":
			inRequire = false
		case inRequire && len(fields) == 2:
			requires[fields[0]] = fields[1]
		case fields[0] == "module" && len(fields) == 2:
			self = strings.Trim(fields[1], `"`)
		case fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inRequire = true
		case fields[0] == "require" && len(fields) == 3:
			requires[fields[1]] = fields[2]
		}
	}
	if err := s.Err(); err != nil {
		return "", nil, err
	}
	if self == "" {
		return "", nil, errors.New(file + ": no module line")
	}
	return self, requires, nil
}
