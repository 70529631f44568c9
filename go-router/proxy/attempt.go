package proxy

import (
	"io"
	"net/http"
	"time"

	"cellbench/go-router/routing"
)

// maxDiscardBytes is how much of a response that is thrown away before a
// retry is read to keep its connection reusable.
const maxDiscardBytes = 64 << 10

// proxy makes up to the placement's max_attempts upstream attempts and
// answers with the last one (contract section 2, rules 6-8).
func (rt *Router) proxy(w http.ResponseWriter, r *http.Request, ex *exchange, p *placement, permit func(error)) {
	hasBody := r.ContentLength != 0
	var body *requestBody
	if hasBody {
		body = &requestBody{body: r.Body, limit: p.maxBodyBytes}
	}
	header := upstreamHeader(r, ex.requestID)

	var (
		resp    *http.Response
		outcome routing.Outcome
	)
	for attempt := 1; ; attempt++ {
		ex.attempts = attempt
		out := r.WithContext(r.Context()) // shallow copy; fields below are replaced
		target := *r.URL
		target.Scheme, target.Host = "http", p.upstream.host
		out.URL = &target
		out.Header = header
		out.RequestURI = r.RequestURI // the pool sends it as is; http.Transport ignores it
		out.Close = false
		out.Trailer = nil
		if hasBody {
			out.Body = body
		} else {
			out.Body = nil
		}

		sent := time.Now()
		var err error
		resp, err = p.upstream.roundTrip(out, w)
		ex.upstream = time.Since(sent)
		if err != nil {
			resp = nil
			if body != nil && body.tooBig.Load() {
				release(permit, errNotAttempted)
				rt.fail(w, ex, http.StatusRequestEntityTooLarge, codeBodyTooLarge, bodyTooLargeMessage(p))
				return
			}
			// net/http cancels the request's context on any read error of
			// the connection, a deadline too; the client is still there.
			if body != nil && body.stalled.Load() {
				release(permit, errNotAttempted)
				w.Header()["Connection"] = connectionClose
				rt.fail(w, ex, http.StatusRequestTimeout, codeRequestTimeout, "the request body stalled longer than the client body idle timeout")
				return
			}
			if body != nil && body.broken.Load() && r.Context().Err() == nil {
				release(permit, errNotAttempted)
				rt.fail(w, ex, http.StatusBadRequest, codeBadRequest, "the request body could not be read: "+err.Error())
				return
			}
			var gone bool
			outcome, gone = classify(r.Context(), err)
			if gone {
				release(permit, errNotAttempted)
				ex.status, ex.errCode = statusClientClosed, codeClientClosed
				return
			}
			release(permit, errAttemptFailed)
		} else {
			outcome = routing.OutcomeOfStatus(resp.StatusCode)
			if routing.IsBreakerFailure(outcome, resp.StatusCode) {
				release(permit, errAttemptFailed)
			} else {
				release(permit, nil)
			}
		}
		permit = nil

		if attempt >= p.maxAttempts || !routing.MayRetry(outcome, r.Method, hasBody, body != nil && body.consumed()) {
			break
		}
		if p.breaker != nil {
			done, ok := p.breaker.allow()
			if !ok {
				break // the breaker opened under us: answer with what we have
			}
			permit = done
		}
		if resp != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDiscardBytes)
			resp.Body.Close()
			resp = nil
		}
		p.metrics.retries.Inc()
	}

	if resp != nil {
		rt.respond(w, ex, resp)
		return
	}
	switch outcome {
	case routing.OutcomeConnectFailure:
		rt.fail(w, ex, http.StatusBadGateway, codeUpstreamConnectError, "could not connect to placement "+p.name)
	case routing.OutcomeTimeout:
		rt.fail(w, ex, http.StatusGatewayTimeout, codeUpstreamTimeout, "placement "+p.name+" did not answer in time")
	default:
		rt.fail(w, ex, http.StatusBadGateway, codeUpstreamError, "placement "+p.name+" closed the connection without an answer")
	}
}

// forwardInterim passes a 1xx response on to the client (RFC 9110 §15.2: a
// proxy forwards informational responses it did not ask for). net/http
// sends it at once from the header map, which is then cleared for the
// final response; a Connection field the handler set for the final
// response is kept out of the 1xx and put back.
func forwardInterim(w http.ResponseWriter, status int, header http.Header) {
	h := w.Header()
	connection := h["Connection"]
	clear(h)
	copyEndToEnd(h, header)
	w.WriteHeader(status)
	clear(h)
	if connection != nil {
		h["Connection"] = connection
	}
}
