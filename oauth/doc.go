// Package oauth is tokengate's protocol core: token formats, the principals a
// token stands for, personal API tokens, validation with its cache, user JWT
// verification and the storage interface with its SQL implementations.
//
// It imports no Caddy package, so it can be tested on its own; the Caddy
// modules in package module translate HTTP and configuration into calls here.
package oauth
