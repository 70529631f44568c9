// Package parity is the black-box integration suite of cellbench: it starts a
// router binary and the mock cells as real processes, talks to them over real
// sockets, and checks the behaviour that docs/contract.md (sections 2-6)
// fixes. The same tests run unchanged against the Go and the Pingora router;
// see README.md for how to point them at each.
package parity
