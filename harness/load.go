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

	"cellbench/harness/loadgen"
	"cellbench/harness/metrics"
	"cellbench/harness/scenario"
)

// requestTimeout bounds every request: a router that hangs shows as errors,
// never as a harness that hangs.
const requestTimeout = 10 * time.Second

// load is the request shapes of a scenario, addressed for one target: the
// router, or for the direct baseline the cell each key is routed to.
type load struct {
	targets []scenario.Target
	// addr maps a target index to the host:port it is sent to.
	addr func(i int) string
	// wire is the round-robin list of loadgen requests, by weight.
	wire []loadgen.Request
	// vegeta is the same list for vegeta's attacker.
	vegeta vegeta.Targeter
	// pool and client are loadgen's and vegeta's keep-alive connections,
	// kept across the warm-up, the probe and every step, so connections
	// are reused as a long-lived client's would be.
	pool   *loadgen.Pool
	client *http.Client
}

func newLoad(targets []scenario.Target, addr func(i int) string) *load {
	l := &load{targets: targets, addr: addr}
	var vts []vegeta.Target
	for i, t := range targets {
		var body []byte
		if t.BodyBytes > 0 {
			body = bytes.Repeat([]byte("x"), t.BodyBytes)
		}
		fields := [][2]string{{"X-Routing-Key", t.RoutingKey}}
		h := http.Header{}
		h.Set("X-Routing-Key", t.RoutingKey)
		for _, k := range sortedKeys(t.Headers) {
			fields = append(fields, [2]string{k, t.Headers[k]})
			h.Set(k, t.Headers[k])
		}
		req := loadgen.Request{Addr: addr(i), Target: i, Wire: loadgen.Encode(t.Method, addr(i), t.Path, fields, body)}
		vt := vegeta.Target{Method: t.Method, URL: "http://" + addr(i) + t.Path + targetFragment + strconv.Itoa(i), Header: h, Body: body}
		for w := 0; w < t.Weight; w++ {
			l.wire = append(l.wire, req)
			vts = append(vts, vt)
		}
	}
	// Round-robin over the expanded list is exact over any window of
	// len(list) requests, which is what the per-placement check needs.
	l.vegeta = vegeta.NewStaticTargeter(vts...)
	l.client = &http.Client{Transport: newTransport(), Timeout: requestTimeout}
	l.pool = loadgen.NewPool(requestTimeout)
	return l
}

func (l *load) close() {
	l.client.CloseIdleConnections()
	l.pool.Close()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// openLoop sends rate req/s for d on loadgen with conns connections and
// returns the records in schedule order, with Start relative to origin.
func (l *load) openLoop(rate, conns int, d time.Duration, origin time.Time) []metrics.Record {
	start := time.Now()
	res, err := loadgen.Attack(loadgen.Plan{Requests: l.wire, Rate: rate, Duration: d, Conns: conns, Timeout: requestTimeout, Pool: l.pool})
	return fromLoadgen(res, err, start.Sub(origin))
}

// closedLoop keeps conns connections busy for d on loadgen.
func (l *load) closedLoop(conns int, d time.Duration, origin time.Time) []metrics.Record {
	start := time.Now()
	res, err := loadgen.Attack(loadgen.Plan{Requests: l.wire, Duration: d, Conns: conns, Timeout: requestTimeout, Pool: l.pool})
	return fromLoadgen(res, err, start.Sub(origin))
}

func fromLoadgen(res []loadgen.Result, err error, offset time.Duration) []metrics.Record {
	if err != nil {
		// A plan error or a pacer failure: one record says so, so that the
		// run shows an error instead of an empty success.
		return []metrics.Record{{Start: offset, Code: 0, Error: err.Error(), Target: -1}}
	}
	recs := make([]metrics.Record, len(res))
	for i, r := range res {
		recs[i] = metrics.Record{Start: offset + r.Due, Latency: r.Latency(), Lag: r.GeneratorLag, NoFreeConn: r.NoFreeConn,
			Code: r.Code, Error: r.Err, Target: r.Target, Served: r.Served, Failover: r.Failover, Version: r.Version}
	}
	return recs
}

// maxWorkers bounds vegeta's concurrency (and so its connections). Vegeta
// adds a worker whenever every worker is busy; against an overloaded target
// that spirals into thousands of new connections that measure the accept
// queue, not the router. 1024 workers carry 10 000 req/s at 100 ms.
const maxWorkers = 1024

// newTransport is vegeta's HTTP/1.1 keep-alive client.
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

// targetFragment marks which scenario target a vegeta request came from.
// Vegeta results carry the target URL but not its headers; a fragment is
// kept in the URL yet never sent on the wire (RFC 9110 §4.2.4), so it
// labels each result at no cost to the request.
const targetFragment = "#t="

// vegetaOpenLoop runs one constant-rate vegeta attack. Vegeta stamps a
// result when a worker picks the request up; its pacer (ConstantPacer)
// schedules hit k at the attack's start + k/rate, and results carry k as
// Seq, so each record is re-based on its scheduled time: Start is the
// schedule, Latency runs from it, Lag is how late the pickup was.
func (l *load) vegetaOpenLoop(rate int, d time.Duration, origin time.Time) []metrics.Record {
	a := vegeta.NewAttacker(
		vegeta.Client(l.client),
		vegeta.Workers(uint64(min(64, rate))),
		vegeta.MaxWorkers(maxWorkers),
		vegeta.MaxBody(0),
		vegeta.KeepAlive(true),
	)
	interval := time.Second / time.Duration(rate)
	// Bound the number of results even if the pacer misbehaves.
	limit := int(float64(rate)*d.Seconds()*1.2) + 100
	recs := make([]metrics.Record, 0, min(limit, 1<<20))
	// began is taken just before the attacker takes its own start, so
	// the lag is over- rather than under-stated, by microseconds.
	began := time.Now()
	for res := range a.Attack(l.vegeta, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, "") {
		if len(recs) >= limit {
			a.Stop()
			continue
		}
		due := began.Add(time.Duration(res.Seq) * interval)
		r := fromVegeta(res)
		r.Start = due.Sub(origin)
		r.Lag = max(0, res.Timestamp.Sub(due))
		r.Latency = res.Timestamp.Add(res.Latency).Sub(due)
		recs = append(recs, r)
	}
	// Results arrive in completion order; timelines and visibility need
	// schedule order.
	slices.SortStableFunc(recs, func(a, b metrics.Record) int { return cmp.Compare(a.Start, b.Start) })
	return recs
}

func fromVegeta(res *vegeta.Result) metrics.Record {
	r := metrics.Record{Code: res.Code, Target: -1}
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

// errorClass drops the request URL from a vegeta client error (`Get "URL":
// dial tcp ...: connection refused`) so that errors group by cause.
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
