// Package tunedpath records which of go-router's own HTTP/1.1 pieces, the
// ones only the tuned engine runs, this process has reached. A test serves
// real traffic through a router on the stdlib engine and checks that none
// was reached, and through one on the tuned engine that every one was, so
// "stdlib is plain net/http" is checked rather than assumed.
//
// A mark is a sticky flag, not a counter: after the first Mark it is a
// load of a cache line nobody writes any more, so the hot path pays about
// nothing for it, where a shared counter would bounce between cores on
// every request.
package tunedpath

import "sync/atomic"

// Piece is one tuned-engine-only part of go-router.
type Piece int

const (
	RawConn            Piece = iota // go-router/rawconn: socket I/O without the syscall bracket
	ServerLoop                      // go-router/server: the own connection loop in front of net/http.Server
	RequestHeadParser               // go-router/server: the own parser of plain request heads
	UpstreamClient                  // go-router/proxy: the own pooled client for bodiless requests
	ResponseHeadParser              // go-router/proxy: the own parser of plain upstream response heads
	numPieces
)

// Pieces lists every Piece.
var Pieces = [numPieces]Piece{RawConn, ServerLoop, RequestHeadParser, UpstreamClient, ResponseHeadParser}

var names = [numPieces]string{"rawconn", "server loop", "request head parser", "upstream client", "response head parser"}

func (p Piece) String() string { return names[p] }

var reached [numPieces]atomic.Bool

// Mark records that p ran.
func Mark(p Piece) {
	if !reached[p].Load() {
		reached[p].Store(true)
	}
}

// Reached reports whether p ran since the start or the last Reset.
func Reached(p Piece) bool { return reached[p].Load() }

// Reset forgets every mark, so that one test process can check one engine
// after another.
func Reset() {
	for i := range reached {
		reached[i].Store(false)
	}
}
