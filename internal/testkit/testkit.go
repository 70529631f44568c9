// Package testkit holds the small helpers that the process-level tests of
// several packages share (control plane, end-to-end, parity).
package testkit

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"testing"
)

// Buffer collects what a process or a logger writes while the test reads
// it; safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a 127.0.0.1 address nobody listens on right now. Another
// process may take it before the caller binds it; tests that can bind port 0
// themselves should.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StarveScheduler leaves this process one P and a goroutine that never
// blocks, so every other goroutine runs only when the scheduler preempts
// it: a load generator starved of CPU. The returned func undoes both.
func StarveScheduler() (restore func()) {
	prev := runtime.GOMAXPROCS(1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				for i := 0; i < 1e6; i++ {
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		runtime.GOMAXPROCS(prev)
	}
}
