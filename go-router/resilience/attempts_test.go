package resilience

import (
	"testing"

	"cellbench/config"
	"cellbench/go-router/routing"
)

// Each row runs one request's attempt loop over a sequence of attempt
// results and checks how many attempts it makes and what the breaker saw.
func TestAttempts(t *testing.T) {
	type result struct {
		outcome  routing.Outcome
		status   int
		consumed bool
	}
	var (
		ok200   = result{routing.OutcomeResponse, 200, false}
		err500  = result{routing.OutcomeResponse, 500, false}
		err503  = result{routing.OutcomeRetryableStatus, 503, false}
		refused = result{routing.OutcomeConnectFailure, 0, false}
		timeout = result{routing.OutcomeTimeout, 0, false}
		broken  = result{routing.OutcomeBroken, 0, false}
		readAll = result{routing.OutcomeConnectFailure, 0, true} // a body byte went out first
	)
	cases := []struct {
		name      string
		max       int
		method    string
		hasBody   bool
		threshold int64 // breaker failure_threshold; 0: no breaker
		results   []result
		attempts  int
		state     CircuitState // breaker state after the loop
	}{
		{"success first", 3, "GET", false, 5, []result{ok200}, 1, Closed},
		{"one attempt allowed", 1, "GET", false, 5, []result{err503}, 1, Closed},
		{"503 then success", 3, "GET", false, 5, []result{err503, ok200}, 2, Closed},
		{"all attempts fail", 3, "GET", false, 5, []result{err503, timeout, broken}, 3, Closed},
		{"500 is final", 3, "GET", false, 5, []result{err500}, 1, Closed},
		{"POST not retried after 503", 3, "POST", true, 5, []result{err503}, 1, Closed},
		{"POST retried after connect failure", 3, "POST", true, 5, []result{refused, ok200}, 2, Closed},
		{"POST not retried once its body was read", 3, "POST", true, 5, []result{readAll}, 1, Closed},
		{"bodiless POST not retried after a timeout", 3, "POST", false, 5, []result{timeout}, 1, Closed},
		{"PUT without body retried", 3, "PUT", false, 5, []result{broken, ok200}, 2, Closed},
		{"breaker opens under the loop", 3, "GET", false, 2, []result{err503, err503}, 2, Open},
		{"no breaker", 3, "GET", false, 0, []result{err503, err503, ok200}, 3, Closed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b *Breaker
			var permit Permit
			if c.threshold > 0 {
				b = NewBreaker("p", config.CircuitBreaker{FailureThreshold: c.threshold, OpenMs: 60000}, func(string, CircuitState, CircuitState) {})
				permit, _ = b.Admit()
			}
			a := NewAttempts(b, permit, c.max, c.method, c.hasBody)
			for i := 0; ; i++ {
				if i == len(c.results) {
					t.Fatalf("attempt %d asked for, the row has %d results", i+1, len(c.results))
				}
				if n := a.Begin(); n != i+1 {
					t.Fatalf("Begin = %d, want %d", n, i+1)
				}
				r := c.results[i]
				if !a.End(r.outcome, r.status, r.consumed) {
					break
				}
			}
			if a.Count() != c.attempts {
				t.Errorf("%d attempts, want %d", a.Count(), c.attempts)
			}
			if b != nil && b.State() != c.state {
				t.Errorf("breaker %s, want %s", b.State(), c.state)
			}
		})
	}
}

// A retry takes a new permit: in half-open the one trial is the first
// attempt, so the loop stops there instead of sending a second request
// past the breaker; an abandoned permit frees the trial.
func TestAttemptsPermits(t *testing.T) {
	b := NewBreaker("p", config.CircuitBreaker{FailureThreshold: 1, OpenMs: 60000}, func(string, CircuitState, CircuitState) {})
	permit, _ := b.Admit()
	a := NewAttempts(b, permit, 3, "GET", false)
	a.Begin()
	if a.End(routing.OutcomeRetryableStatus, 503, false) {
		t.Fatal("retried although the failure opened the breaker")
	}
	b2 := NewBreaker("p", config.CircuitBreaker{FailureThreshold: 1, OpenMs: 60000}, func(string, CircuitState, CircuitState) {})
	permit, _ = b2.Admit()
	a = NewAttempts(b2, permit, 3, "GET", false)
	a.Begin()
	a.Abandon()
	if _, ok := b2.Admit(); !ok || b2.State() != Closed {
		t.Fatalf("an abandoned permit counted: state %s", b2.State())
	}
}
