// Package resilience holds the per-placement protections of contract
// section 2: the circuit breaker, active health checks, the rate limit and
// the concurrency limit. Each keeps state that outlives one config
// snapshot (go-router/snapshot carries it over), and none does request I/O.
package resilience

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"cellbench/config"
	"cellbench/go-router/routing"
)

// CircuitState is a breaker state; its value is the cellbench_circuit_state
// gauge's (0 closed, 1 half-open, 2 open).
type CircuitState uint8

const (
	Closed CircuitState = iota
	HalfOpen
	Open
)

var circuitNames = [...]string{Closed: "closed", HalfOpen: "half_open", Open: "open"}

// String is the state as the contract spells it (X-Circuit-State, admin).
func (s CircuitState) String() string { return circuitNames[s] }

// Results reported to gobreaker for a permit it granted.
var (
	errAttemptFailed = errors.New("upstream attempt failed")
	// errNotAttempted returns a permit without counting it.
	errNotAttempted = errors.New("upstream not attempted")
)

// Breaker maps the contract's breaker (section 2, rule 8) onto gobreaker:
// ReadyToTrip at failure_threshold consecutive failures, Timeout = open_ms,
// MaxRequests 1 so half-open admits one trial at a time, and a trial
// success closes it. Interval 0 keeps counts until a state change, so only
// consecutive failures matter.
type Breaker struct {
	settings config.CircuitBreaker
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// NewBreaker makes the breaker of placement name; onChange hears every
// state change.
func NewBreaker(name string, settings config.CircuitBreaker, onChange func(name string, from, to CircuitState)) *Breaker {
	threshold := uint32(settings.FailureThreshold)
	return &Breaker{
		settings: settings,
		cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name,
			MaxRequests: 1,
			Timeout:     time.Duration(settings.OpenMs) * time.Millisecond,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
			IsExcluded:  func(err error) bool { return err == errNotAttempted },
			OnStateChange: func(name string, from, to gobreaker.State) {
				onChange(name, circuitState(from), circuitState(to))
			},
		}),
	}
}

// Settings are the settings the breaker was made with.
func (b *Breaker) Settings() config.CircuitBreaker { return b.settings }

// Permit is the breaker's leave to send one attempt. Exactly one of Record
// and Abandon must be called on it. The zero Permit belongs to no breaker:
// both are no-ops.
type Permit struct{ done func(error) }

// Admit asks for a permit; ok is false while the breaker refuses attempts
// (open, or half-open with its one trial under way).
func (b *Breaker) Admit() (p Permit, ok bool) {
	done, err := b.cb.Allow()
	return Permit{done}, err == nil
}

// Record counts the attempt's outcome (status is the response's, 0 without
// one) by the contract's failure rule, routing.IsBreakerFailure.
func (p Permit) Record(outcome routing.Outcome, status int) {
	if p.done == nil {
		return
	}
	if routing.IsBreakerFailure(outcome, status) {
		p.done(errAttemptFailed)
	} else {
		p.done(nil)
	}
}

// Abandon returns the permit without counting it either way: the request
// was refused by a later check (concurrency, body limit) or the client left.
func (p Permit) Abandon() {
	if p.done != nil {
		p.done(errNotAttempted)
	}
}

// State is the breaker's state now; an open breaker whose open period ran
// out reports half-open.
func (b *Breaker) State() CircuitState { return circuitState(b.cb.State()) }

func circuitState(s gobreaker.State) CircuitState {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}
