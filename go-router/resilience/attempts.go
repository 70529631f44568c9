package resilience

import "cellbench/go-router/routing"

// Attempts is the retry loop of one request (contract section 2, rules
// 6-8): the attempt number, the breaker permit held for the attempt under
// way, and whether another attempt may follow. It does no I/O: the router
// makes the round trips and tells it how each ended. It is a value so that
// it stays on the handler's stack.
type Attempts struct {
	breaker *Breaker // nil: the placement has no breaker
	permit  Permit
	max     int
	method  string
	hasBody bool
	n       int
}

// NewAttempts starts the loop of a request to a placement with breaker b
// (nil for none), holding the permit that admitted the request.
func NewAttempts(b *Breaker, permit Permit, maxAttempts int, method string, hasBody bool) Attempts {
	return Attempts{breaker: b, permit: permit, max: maxAttempts, method: method, hasBody: hasBody}
}

// Begin starts the next attempt and returns its number, from 1.
func (a *Attempts) Begin() int {
	a.n++
	return a.n
}

// Count is the number of attempts begun.
func (a *Attempts) Count() int { return a.n }

// Abandon returns the permit held without counting it: the attempt was
// refused by the router (body limit, a client body that failed) or the
// client left.
func (a *Attempts) Abandon() {
	a.permit.Abandon()
	a.permit = Permit{}
}

// End records how the attempt ended (status is the response's, 0 without
// one) and reports whether another may follow: attempts are left, the
// retry rules let this method and body go again (bodyConsumed: a body
// byte went upstream), and the breaker admits it. When it does not, the
// request is answered with this attempt's result.
func (a *Attempts) End(outcome routing.Outcome, status int, bodyConsumed bool) (retry bool) {
	a.permit.Record(outcome, status)
	a.permit = Permit{}
	if a.n >= a.max || !routing.MayRetry(outcome, a.method, a.hasBody, bodyConsumed) {
		return false
	}
	if a.breaker != nil {
		p, ok := a.breaker.Admit()
		if !ok {
			return false // the breaker opened under us
		}
		a.permit = p
	}
	return true
}
