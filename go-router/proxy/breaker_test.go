package proxy

import (
	"testing"
	"time"

	"cellbench/config"
)

func TestBreakerContract(t *testing.T) {
	var changes []string
	b := newBreaker("p", config.CircuitBreaker{FailureThreshold: 3, OpenMs: 60}, func(_, from, to string) {
		changes = append(changes, from+">"+to)
	})
	attempt := func(result error) {
		t.Helper()
		done, ok := b.allow()
		if !ok {
			t.Fatalf("breaker refused in state %s", b.state())
		}
		done(result)
	}
	// A success resets the consecutive count.
	attempt(errAttemptFailed)
	attempt(errAttemptFailed)
	attempt(nil)
	attempt(errAttemptFailed)
	attempt(errAttemptFailed)
	// Releases without an attempt are not counted either way.
	attempt(errNotAttempted)
	if b.state() != circuitClosed {
		t.Fatalf("state %s after 2 consecutive failures, want closed", b.state())
	}
	attempt(errAttemptFailed)
	if b.state() != circuitOpen {
		t.Fatalf("state %s after 3 consecutive failures, want open", b.state())
	}
	if _, ok := b.allow(); ok {
		t.Fatal("open breaker admitted a request")
	}
	time.Sleep(80 * time.Millisecond)
	trial, ok := b.allow()
	if !ok || b.state() != circuitHalfOpen {
		t.Fatalf("after open_ms: ok=%v state=%s, want a half-open trial", ok, b.state())
	}
	if _, ok := b.allow(); ok {
		t.Fatal("half-open breaker admitted a second trial at the same time")
	}
	trial(errAttemptFailed)
	if b.state() != circuitOpen {
		t.Fatalf("failed trial left state %s, want open", b.state())
	}
	time.Sleep(80 * time.Millisecond)
	trial, _ = b.allow()
	trial(errNotAttempted) // a released trial frees the slot
	trial, ok = b.allow()
	if !ok {
		t.Fatal("half-open slot not freed by a release")
	}
	trial(nil)
	if b.state() != circuitClosed {
		t.Fatalf("successful trial left state %s, want closed", b.state())
	}
	want := []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
}
