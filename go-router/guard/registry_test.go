package guard

import (
	"net"
	"testing"
	"time"
)

func TestMaxConnsForIsHalfOfWhatTheReserveLeaves(t *testing.T) {
	// The same table as pingora-router's guard tests: both routers derive
	// the same cap from the same limit.
	for nofile, want := range map[uint64]int{1024: 480, 20000: 9968, 10: 1, ^uint64(0): 1 << 20} {
		if got := MaxConnsFor(nofile); got != want {
			t.Errorf("MaxConnsFor(%d) = %d, want %d", nofile, got, want)
		}
	}
}

// pipeConn is a registered connection over a net.Pipe, whose closing the
// test can observe from the other end.
func admitted(t *testing.T, r *Registry) (*Conn, net.Conn, bool) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := &Conn{Conn: a, r: r}
	c.since.Store(time.Now().UnixNano())
	return c, b, r.admit(c)
}

func closed(peer net.Conn) bool {
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := peer.Read(make([]byte, 1))
	ne, timeout := err.(net.Error)
	return err != nil && !(timeout && ne.Timeout())
}

func TestAtTheCapTheOldestWaitingConnectionIsShed(t *testing.T) {
	r := NewRegistry(Options{MaxConns: 3})
	a, pa, _ := admitted(t, r)
	_, pb, _ := admitted(t, r)
	c, pc, _ := admitted(t, r)
	a.busy.Store(true) // a request under way: never shed
	time.Sleep(time.Millisecond)
	c.markWaiting() // c waits since now, b since its accept
	_, _, ok := admitted(t, r)
	if !ok {
		t.Fatal("the newcomer was refused although b and c were waiting")
	}
	if closed(pa) || !closed(pb) || closed(pc) {
		t.Errorf("closed: a %v, b %v, c %v; want only b (the longest waiting)", closed(pa), closed(pb), closed(pc))
	}
	if open, shed, _ := r.Stats(); open != 3 || shed != 1 {
		t.Errorf("open %d shed %d, want 3 and 1", open, shed)
	}
}

func TestWithEveryConnectionBusyTheNewcomerIsRefused(t *testing.T) {
	r := NewRegistry(Options{MaxConns: 2})
	for range 2 {
		c, _, _ := admitted(t, r)
		c.busy.Store(true)
	}
	if _, _, ok := admitted(t, r); ok {
		t.Fatal("a newcomer was admitted over the cap with every connection busy")
	}
}

func TestCloseUnregisters(t *testing.T) {
	r := NewRegistry(Options{MaxConns: 2})
	c, _, _ := admitted(t, r)
	c.Close()
	c.Close() // twice is harmless
	if open, _, _ := r.Stats(); open != 0 {
		t.Errorf("%d open after Close, want 0", open)
	}
}

func TestAtTheCapConnectionsAreShedAtTheShedRate(t *testing.T) {
	const per = 50 * time.Millisecond // ShedRate 20
	r := NewRegistry(Options{MaxConns: 1, ShedRate: float64(time.Second / per)})
	_, pa, _ := admitted(t, r) // under the cap: no wait
	start := time.Now()
	_, pb, _ := admitted(t, r) // sheds a: the burst, at once
	shedA := time.Since(start)
	_, _, ok := admitted(t, r) // sheds b one interval later
	shedB := time.Since(start)
	if !ok || !closed(pa) || !closed(pb) {
		t.Fatalf("admitted %v; a closed %v, b closed %v: want the newcomer in and both shed", ok, closed(pa), closed(pb))
	}
	if shedA > per/2 || shedB < per*3/4 {
		t.Errorf("sheds at %v and %v, want the first at once and the second after about %v", shedA, shedB, per)
	}
	if _, shed, _ := r.Stats(); shed != 2 {
		t.Errorf("shed %d, want 2", shed)
	}
}
