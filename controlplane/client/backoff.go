package client

import (
	"math/rand/v2"
	"time"
)

// backoff yields reconnect delays that double from min to max, each spread
// by ±20 % so that a fleet that lost the control plane at the same moment
// does not come back in lockstep. Hand-written: it is a dozen lines and the
// project's allowed dependencies carry no backoff package.
type backoff struct {
	min, max time.Duration
	current  time.Duration
	jitter   func() float64 // uniform in [0, 1)
}

const backoffSpread = 0.2

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, current: min, jitter: rand.Float64}
}

// next returns the delay before the next attempt and doubles the base.
func (b *backoff) next() time.Duration {
	base := b.current
	b.current = min(2*b.current, b.max)
	spread := 1 + backoffSpread*(2*b.jitter()-1)
	return max(b.min, min(b.max, time.Duration(float64(base)*spread)))
}

// reset starts the sequence again from min.
func (b *backoff) reset() { b.current = b.min }
