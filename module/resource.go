package module

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// protectedResourcePath is where RFC 9728 3 puts a protected resource's
// metadata; a resource with a path has it appended (RFC 9728 3.1).
const protectedResourcePath = "/.well-known/oauth-protected-resource"

// protectedResource is a resource some guard of the config names, as its
// RFC 9728 metadata describes it.
type protectedResource struct {
	// id is the resource identifier, as the config writes it.
	id string
	// host is the identifier's host[:port], to tell apart resources of
	// different sites whose metadata paths are the same.
	host string
	// metadataPath is the path of its metadata document, and metadataURL
	// the whole URL, built on the identifier's scheme and host.
	metadataPath, metadataURL string
	// scopes are every scope the guards of the resource require.
	scopes map[string]bool
}

// resourceRegistry holds the resources the guards of one config name.
// Each config has an App of its own, so during a reload the guards of the
// new config fill the new App's registry and the old config keeps
// answering from its own. Guards add to it while the config provisions;
// the endpoints read it while serving.
type resourceRegistry struct {
	mu     sync.RWMutex
	byID   map[string]*protectedResource
	byPath map[string][]*protectedResource
}

// CheckResourceURI applies what RFC 9728 1.2 and RFC 8707 2 ask of a
// resource identifier: an absolute https URI (http for a loopback host,
// so that a local setup works), with no fragment. A query, which those
// RFCs discourage, is refused too: it would have to follow the metadata
// path, and no client is known to build that URL alike. Characters that
// a URI cannot hold unescaped are refused, so that the identifier can sit
// in a quoted WWW-Authenticate parameter as it is.
func CheckResourceURI(raw string) error {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0 {
			return fmt.Errorf("resource %q has a character a URI cannot hold unescaped", raw)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("resource %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("resource %q must not have a fragment", raw)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("resource %q must not have a query", raw)
	}
	if u.User != nil {
		return fmt.Errorf("resource %q must not have user information", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !oauth.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("resource %q must use https (http is allowed for loopback hosts only)", raw)
		}
	default:
		return fmt.Errorf("resource %q must use https", raw)
	}
	return nil
}

// resourceMetadataPath is where the metadata of the resource raw, a URI
// CheckResourceURI accepts, is served: the well-known path, then the
// resource's path, a path of "/" alone counting as none (RFC 9728 3.1).
func resourceMetadataPath(raw string) (host, path string) {
	rest := raw[strings.Index(raw, "://")+3:]
	host, p, _ := strings.Cut(rest, "/")
	if p == "" {
		return host, protectedResourcePath
	}
	return host, protectedResourcePath + "/" + p
}

// protectResource records that a guard protects the resource id with the
// given scopes, and returns the resource. Guards naming the same resource
// share it; two resources whose metadata would have the same URL are a
// config error.
func (a *App) protectResource(id string, scopes []string) (*protectedResource, error) {
	if err := CheckResourceURI(id); err != nil {
		return nil, err
	}
	if a.resources == nil {
		a.resources = new(resourceRegistry)
	}
	reg := a.resources
	reg.mu.Lock()
	defer reg.mu.Unlock()
	res := reg.byID[id]
	if res == nil {
		host, path := resourceMetadataPath(id)
		scheme, _, _ := strings.Cut(id, "://")
		res = &protectedResource{
			id: id, host: host, metadataPath: path,
			metadataURL: scheme + "://" + host + path,
			scopes:      map[string]bool{},
		}
		for _, other := range reg.byPath[path] {
			if strings.EqualFold(other.host, host) {
				return nil, fmt.Errorf("resources %q and %q would have the same metadata URL %s", other.id, id, res.metadataURL)
			}
		}
		if reg.byID == nil {
			reg.byID = map[string]*protectedResource{}
			reg.byPath = map[string][]*protectedResource{}
		}
		reg.byID[id] = res
		reg.byPath[path] = append(reg.byPath[path], res)
	}
	for _, s := range scopes {
		res.scopes[s] = true
	}
	return res, nil
}

// knownResource reports whether a resource indicator (RFC 8707) names a
// resource of this config: one its guards name, or the issuer itself.
func (a *App) knownResource(id string) bool {
	if id == a.Issuer {
		return true
	}
	reg := a.resources
	if reg == nil {
		return false
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	return reg.byID[id] != nil
}

// resourceAt returns the resource whose metadata r asks for: the one
// whose metadata path is r's, and when resources of several sites share
// that path, the one of r's host.
func (a *App) resourceAt(r *http.Request) *protectedResource {
	reg := a.resources
	if reg == nil {
		return nil
	}
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	candidates := reg.byPath[r.URL.EscapedPath()]
	if len(candidates) == 1 {
		return candidates[0]
	}
	for _, res := range candidates {
		if strings.EqualFold(res.host, r.Host) {
			return res
		}
	}
	return nil
}

// protectedResourceMetadata is the RFC 9728 2 metadata of a resource.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	DPoPSigningAlgs        []string `json:"dpop_signing_alg_values_supported"`
}

// dpopSigningAlgs are the DPoP proof algorithms the guard takes (RFC 9449).
var dpopSigningAlgs = []string{"ES256", "RS256", "EdDSA"}

// protectedResourceCacheControl lets clients and caches keep a metadata
// document a while, but not for long: it changes with the config.
const protectedResourceCacheControl = "public, max-age=300"

// serveProtectedResource answers GET on a resource's metadata path (RFC
// 9728 3.2). It needs no store: the document is the config's. A path
// that is no resource's passes to next.
func (e *Endpoints) serveProtectedResource(w http.ResponseWriter, r *http.Request, res *protectedResource) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	scopes := []string{}
	// In the order the config declares the scopes, which is stable; the
	// order of a guard's method lines is not kept in its JSON.
	for _, s := range e.app.allScopes() {
		if res.scopes[s.Name] {
			scopes = append(scopes, s.Name)
		}
	}
	w.Header().Set("Cache-Control", protectedResourceCacheControl)
	return writeJSON(w, http.StatusOK, protectedResourceMetadata{
		Resource:               res.id,
		AuthorizationServers:   []string{e.app.Issuer},
		ScopesSupported:        scopes,
		BearerMethodsSupported: []string{"header"},
		DPoPSigningAlgs:        slices.Clone(dpopSigningAlgs),
	})
}

// useResource records the guard's resource, if it names one, with the
// app, and prepares the WWW-Authenticate parameter that points to its
// metadata (RFC 9728 5.1), built from the resource's own scheme and host:
// the request's Host may be anything a client sent.
func (g *Guard) useResource(app *App) error {
	if g.Resource == "" {
		return nil
	}
	res, err := app.protectResource(g.Resource, guardScopes(g.Methods))
	if err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	g.resourceMetadata = `, resource_metadata="` + res.metadataURL + `"`
	return nil
}

// guardScopes lists every scope a guard's method lines name, each once.
func guardScopes(methods map[string][]string) []string {
	var out []string
	for _, scopes := range methods {
		out = append(out, scopes...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
