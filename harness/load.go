package main

import (
	"bytes"
	"cmp"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

// maxWorkers bounds the generator's concurrency (and so its connections).
// Vegeta adds a worker whenever every worker is busy; against an overloaded
// target that spirals into thousands of new connections that measure the
// accept queue, not the router. With the bound, an overloaded target makes
// the generator fall behind the offered rate instead, which the capacity
// verdict catches ("under 95 % of the offered rate answered"). 1024 workers
// carry 10 000 req/s at 100 ms of latency.
const maxWorkers = 1024

// requestTimeout bounds every request: a router that hangs shows as errors,
// never as a harness that hangs.
const requestTimeout = 10 * time.Second

// newTransport is the generator's HTTP/1.1 keep-alive client. One transport
// serves a whole run (warm-up and every capacity step), so connections are
// reused across attacks as a long-lived client's would be.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 8192,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// targetFragment marks which scenario target a request came from. Vegeta
// results carry the target URL but not its headers; a fragment is kept in
// the URL yet never sent on the wire (RFC 9110 §4.2.4), so it labels each
// result at no cost to the request.
const targetFragment = "#t="

// targeter sends the scenario's targets round-robin by weight. base maps a
// target index to the scheme://host:port it is sent to (the router, or for
// the direct baseline the cell that target's key is routed to).
func targeter(targets []scenario.Target, base func(i int) string) vegeta.Targeter {
	var list []vegeta.Target
	for i, t := range targets {
		h := http.Header{}
		h.Set("X-Routing-Key", t.RoutingKey)
		for k, v := range t.Headers {
			h.Set(k, v)
		}
		var body []byte
		if t.BodyBytes > 0 {
			body = bytes.Repeat([]byte("x"), t.BodyBytes)
		}
		vt := vegeta.Target{Method: t.Method, URL: base(i) + t.Path + targetFragment + strconv.Itoa(i), Header: h, Body: body}
		for w := 0; w < t.Weight; w++ {
			list = append(list, vt)
		}
	}
	// Interleave weights (a,a,b -> a,b,a...) would be nicer for tiny
	// windows; round-robin over the expanded list is exact over any window
	// of len(list) requests, which is what the per-placement check needs.
	return vegeta.NewStaticTargeter(list...)
}

// attack runs one constant-rate attack and returns its records, sorted by
// send time, with Start relative to origin.
func attack(client *http.Client, tr vegeta.Targeter, rate int, d time.Duration, origin time.Time) []metrics.Record {
	a := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(uint64(min(64, rate))),
		vegeta.MaxWorkers(maxWorkers),
		vegeta.MaxBody(0),
		vegeta.KeepAlive(true),
	)
	// Bound the number of results even if the pacer misbehaves.
	limit := int(float64(rate)*d.Seconds()*1.2) + 100
	recs := make([]metrics.Record, 0, min(limit, 1<<20))
	for res := range a.Attack(tr, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, "") {
		if len(recs) >= limit {
			a.Stop()
			continue
		}
		recs = append(recs, toRecord(res, origin))
	}
	sortByStart(recs)
	return recs
}

func toRecord(res *vegeta.Result, origin time.Time) metrics.Record {
	r := metrics.Record{
		Start:   res.Timestamp.Sub(origin),
		Latency: res.Latency,
		Code:    res.Code,
		Target:  -1,
	}
	if i := strings.LastIndex(res.URL, targetFragment); i >= 0 {
		r.Target, _ = strconv.Atoi(res.URL[i+len(targetFragment):])
	}
	if r.Code == 0 {
		r.Error = errorClass(res.Error)
	}
	if res.Headers != nil {
		r.Served = res.Headers.Get("X-Routed-To")
		if r.Served == "" {
			r.Served = res.Headers.Get("X-Cell")
		}
		r.Failover = res.Headers.Get("X-Failover-Reason")
		r.Version = res.Headers.Get("X-Config-Version")
	}
	return r
}

// errorClass drops the request URL from a client error (`Get "URL": dial
// tcp ...: connection refused`) so that errors group by cause.
func errorClass(e string) string {
	if i := strings.LastIndex(e, "\": "); i >= 0 {
		e = e[i+3:]
	}
	if i := strings.Index(e, "->"); i >= 0 {
		// "dial tcp 127.0.0.1:1->127.0.0.1:2: ..." keeps only the cause.
		if j := strings.Index(e[i:], ": "); j >= 0 {
			e = e[:strings.LastIndex(e[:i], " ")] + ": " + e[i+j+2:]
		}
	}
	return e
}

func sortByStart(recs []metrics.Record) {
	// Results arrive in completion order; timelines and visibility need
	// send order.
	slices.SortStableFunc(recs, func(a, b metrics.Record) int { return cmp.Compare(a.Start, b.Start) })
}
