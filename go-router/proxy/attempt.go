package proxy

import (
	"io"
	"net/http"
	"time"

	"cellbench/go-router/resilience"
	"cellbench/go-router/routing"
	"cellbench/go-router/snapshot"
	"cellbench/go-router/upstream"
)

// maxDiscardBytes is how much of a response that is thrown away before a
// retry is read to keep its connection reusable.
const maxDiscardBytes = 64 << 10

// proxy makes up to the placement's max_attempts upstream attempts and
// answers with the last one (contract section 2, rules 6-8); what may be
// retried and the breaker permits are resilience.Attempts' business.
func (rt *Router) proxy(w http.ResponseWriter, r *http.Request, ex *Exchange, p *snapshot.Placement, permit resilience.Permit) {
	hasBody := r.ContentLength != 0
	var body *requestBody
	if hasBody {
		body = &requestBody{body: r.Body, limit: p.MaxBodyBytes}
	}
	header := upstreamHeader(r, ex.requestID)
	attempts := resilience.NewAttempts(p.Breaker, permit, p.MaxAttempts, r.Method, hasBody)

	var (
		resp    *http.Response
		outcome routing.Outcome
	)
	for {
		ex.attempts = attempts.Begin()
		out := r.WithContext(r.Context()) // shallow copy; fields below are replaced
		target := *r.URL
		target.Scheme, target.Host = "http", p.Upstream.Host
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
		resp, err = p.Upstream.RoundTrip(out, w)
		ex.upstream = time.Since(sent)
		status := 0
		if err != nil {
			resp = nil
			if code, message, refused := refusedBody(body, r, p, err); refused {
				attempts.Abandon()
				rt.respondError(w, ex, code, message)
				return
			}
			var gone bool
			outcome, gone = upstream.Classify(r.Context(), err)
			if gone {
				attempts.Abandon()
				ex.status, ex.errCode = ClientClosed.Status(), ClientClosed
				return
			}
		} else {
			outcome, status = routing.OutcomeOfStatus(resp.StatusCode), resp.StatusCode
		}
		if !attempts.End(outcome, status, body != nil && body.consumed()) {
			break
		}
		if resp != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDiscardBytes)
			resp.Body.Close()
			resp = nil
		}
		p.Metrics.Retried()
	}

	if resp != nil {
		rt.forwardResponse(w, ex, resp)
		return
	}
	switch outcome {
	case routing.OutcomeConnectFailure:
		rt.respondError(w, ex, UpstreamConnectError, "could not connect to placement "+p.Name)
	case routing.OutcomeTimeout:
		rt.respondError(w, ex, UpstreamTimeout, "placement "+p.Name+" did not answer in time")
	default:
		rt.respondError(w, ex, UpstreamError, "placement "+p.Name+" closed the connection without an answer")
	}
}

// refusedBody tells whether a failed round trip was the client body's
// doing rather than the upstream's, and with which answer: over the body
// limit, stalled past the client body idle timeout (net/http cancels the
// request's context on any read error of the connection, a deadline too,
// though the client is still there), or unreadable.
func refusedBody(body *requestBody, r *http.Request, p *snapshot.Placement, err error) (ErrorCode, string, bool) {
	switch {
	case body == nil:
		return noError, "", false
	case body.tooBig.Load():
		return BodyTooLarge, bodyTooLargeMessage(p), true
	case body.stalled.Load():
		return RequestTimeout, "the request body stalled longer than the client body idle timeout", true
	case body.broken.Load() && r.Context().Err() == nil:
		return UnreadableBody, "the request body could not be read: " + err.Error(), true
	}
	return noError, "", false
}
