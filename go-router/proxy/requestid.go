package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// maxRequestIDBytes is the longest client X-Request-Id the router keeps.
const maxRequestIDBytes = 128

// requestIDs generates ids as a random per-process prefix plus a counter:
// unique across restarts and routers without a random read per request.
type requestIDs struct {
	prefix []byte
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on Linux
	prefix := make([]byte, 0, 17)
	prefix = hex.AppendEncode(prefix, seed[:])
	return &requestIDs{prefix: append(prefix, '-')}
}

func (g *requestIDs) next() string {
	var buf [40]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.seq.Add(1), 36)
	return string(b)
}

// validRequestID reports whether a client-supplied id may be passed on:
// 1 to 128 visible ASCII characters, so it is safe in a header and a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
