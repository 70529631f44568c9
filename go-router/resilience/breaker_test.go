package resilience

import (
	"testing"
	"time"

	"cellbench/config"
	"cellbench/go-router/routing"
)

func TestBreakerContract(t *testing.T) {
	var changes []string
	b := NewBreaker("p", config.CircuitBreaker{FailureThreshold: 3, OpenMs: 60}, func(_ string, from, to CircuitState) {
		changes = append(changes, from.String()+">"+to.String())
	})
	failed := func(p Permit) { p.Record(routing.OutcomeRetryableStatus, 503) }
	succeeded := func(p Permit) { p.Record(routing.OutcomeResponse, 200) }
	attempt := func(result func(Permit)) {
		t.Helper()
		p, ok := b.Admit()
		if !ok {
			t.Fatalf("breaker refused in state %s", b.State())
		}
		result(p)
	}
	// A success resets the consecutive count.
	attempt(failed)
	attempt(failed)
	attempt(succeeded)
	attempt(failed)
	attempt(failed)
	// Abandoned permits are not counted either way.
	attempt(Permit.Abandon)
	if b.State() != Closed {
		t.Fatalf("state %s after 2 consecutive failures, want closed", b.State())
	}
	attempt(failed)
	if b.State() != Open {
		t.Fatalf("state %s after 3 consecutive failures, want open", b.State())
	}
	if _, ok := b.Admit(); ok {
		t.Fatal("open breaker admitted a request")
	}
	time.Sleep(80 * time.Millisecond)
	trial, ok := b.Admit()
	if !ok || b.State() != HalfOpen {
		t.Fatalf("after open_ms: ok=%v state=%s, want a half-open trial", ok, b.State())
	}
	if _, ok := b.Admit(); ok {
		t.Fatal("half-open breaker admitted a second trial at the same time")
	}
	failed(trial)
	if b.State() != Open {
		t.Fatalf("failed trial left state %s, want open", b.State())
	}
	time.Sleep(80 * time.Millisecond)
	trial, _ = b.Admit()
	trial.Abandon() // an abandoned trial frees the slot
	trial, ok = b.Admit()
	if !ok {
		t.Fatal("half-open slot not freed by an abandoned permit")
	}
	succeeded(trial)
	if b.State() != Closed {
		t.Fatalf("successful trial left state %s, want closed", b.State())
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

// Record applies the contract's failure rule: every 5xx and every attempt
// without a response count against the breaker, nothing else does.
func TestPermitRecordCountsByTheFailureRule(t *testing.T) {
	for _, c := range []struct {
		outcome routing.Outcome
		status  int
		failure bool
	}{
		{routing.OutcomeResponse, 200, false},
		{routing.OutcomeResponse, 404, false},
		{routing.OutcomeResponse, 500, true},
		{routing.OutcomeRetryableStatus, 503, true},
		{routing.OutcomeConnectFailure, 0, true},
		{routing.OutcomeTimeout, 0, true},
		{routing.OutcomeBroken, 0, true},
	} {
		b := NewBreaker("p", config.CircuitBreaker{FailureThreshold: 1, OpenMs: 60000}, func(string, CircuitState, CircuitState) {})
		p, _ := b.Admit()
		p.Record(c.outcome, c.status)
		if got := b.State() == Open; got != c.failure {
			t.Errorf("outcome %d status %d: counted as failure %v, want %v", c.outcome, c.status, got, c.failure)
		}
	}
	Permit{}.Record(routing.OutcomeBroken, 0) // the zero permit belongs to no breaker
	Permit{}.Abandon()
}
