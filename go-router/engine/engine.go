// Package engine names go-router and the two HTTP/1.1 engines it runs on.
// It is a leaf: the upstream client, the metrics, the admin listener and
// the command all read it.
package engine

import "fmt"

// RouterName is this router's name in X-Router, the access log, metrics and
// the control plane (contract section 3), whichever engine it runs on.
const RouterName = "go"

// Engine is the HTTP/1.1 implementation go-router runs on, on both sides:
// the server for clients and the client for upstreams.
type Engine string

const (
	// Stdlib is net/http alone: http.Server for clients, http.Transport for
	// upstreams.
	Stdlib Engine = "stdlib"
	// Tuned is go-router's own fast path in front of http.Server, its own
	// pooled client for bodiless upstream requests, its own head parsers
	// and rawconn sockets (go-router/README.md, Decisions).
	Tuned Engine = "tuned"
)

// Parse reads an --engine value.
func Parse(s string) (Engine, error) {
	switch e := Engine(s); e {
	case Stdlib, Tuned:
		return e, nil
	}
	return "", fmt.Errorf("--engine must be %s or %s, got %q", Stdlib, Tuned, s)
}
