package proxy

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"cellbench/config"
)

// Circuit states as the contract spells them (X-Circuit-State, admin) and
// as the cellbench_circuit_state gauge counts them.
const (
	circuitClosed   = "closed"
	circuitHalfOpen = "half_open"
	circuitOpen     = "open"
)

// Results reported to the breaker for a permit it granted.
var (
	errAttemptFailed = errors.New("upstream attempt failed")
	// errNotAttempted releases a permit without counting: the request was
	// refused by a later check (concurrency, body limit) or the client left.
	errNotAttempted = errors.New("upstream not attempted")
)

// breaker maps the contract's breaker (section 2, rule 8) onto gobreaker:
// ReadyToTrip at failure_threshold consecutive failures, Timeout = open_ms,
// MaxRequests 1 so half-open admits one trial at a time, and a trial
// success closes it. Interval 0 keeps counts until a state change, so only
// consecutive failures matter.
type breaker struct {
	settings config.CircuitBreaker
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func newBreaker(name string, settings config.CircuitBreaker, onChange func(name, from, to string)) *breaker {
	threshold := uint32(settings.FailureThreshold)
	return &breaker{
		settings: settings,
		cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name,
			MaxRequests: 1,
			Timeout:     time.Duration(settings.OpenMs) * time.Millisecond,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
			IsExcluded:  func(err error) bool { return err == errNotAttempted },
			OnStateChange: func(name string, from, to gobreaker.State) {
				onChange(name, circuitName(from), circuitName(to))
			},
		}),
	}
}

// allow asks for a permit; done must be called exactly once with nil
// (success), errAttemptFailed or errNotAttempted.
func (b *breaker) allow() (done func(error), ok bool) {
	done, err := b.cb.Allow()
	return done, err == nil
}

func (b *breaker) state() string { return circuitName(b.cb.State()) }

func circuitName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return circuitOpen
	case gobreaker.StateHalfOpen:
		return circuitHalfOpen
	}
	return circuitClosed
}

func circuitGaugeValue(state string) float64 {
	switch state {
	case circuitHalfOpen:
		return 1
	case circuitOpen:
		return 2
	}
	return 0
}
