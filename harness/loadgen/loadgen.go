// Package loadgen is the harness's load engine for the figures that rank the
// routers: capacity staircases, the latency-vs-rate curve and one request in
// flight. It speaks HTTP/1.1 keep-alive over raw TCP with pre-encoded
// requests, so that the generator costs a few microseconds per request and
// the router, not the generator, is what saturates (docs/measurement.md has
// the figures).
//
// Two modes:
//
//   - Open loop (Plan.Rate > 0): request i is due at start + i/rate, whatever
//     happened to the others. A pacer on its own OS thread releases each
//     request at its due time with clock_nanosleep (Go's timers wake up to a
//     millisecond late on an idle process, which would be added to every
//     latency); a fixed pool of connections takes released requests in order.
//     Latency is measured from the due time, so a request that waited for the
//     generator or for a free connection has that wait in its latency
//     (no coordinated omission, as in wrk2).
//   - Closed loop (Plan.Rate == 0): each of Plan.Conns connections sends its
//     next request when the previous answer is complete, as wrk does.
package loadgen

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Request is one pre-encoded request and where it goes.
type Request struct {
	// Addr is host:port; requests with different addresses use different
	// connections.
	Addr string
	// Wire is the whole request as sent (head and body).
	Wire []byte
	// Target is the caller's label for the request shape, copied to results.
	Target int
}

// Plan is one attack.
type Plan struct {
	// Requests are sent round-robin: request i is Requests[i % len].
	Requests []Request
	// Rate is requests per second for an open-loop attack; 0 means closed
	// loop.
	Rate int
	// Duration is how long requests are released (open loop) or sent
	// (closed loop).
	Duration time.Duration
	// Conns is the connection pool: the most requests in flight at once.
	Conns int
	// Timeout bounds each request (connect, write and the whole response).
	Timeout time.Duration
	// Pool keeps the connections for the next attack (a warm-up's for the
	// measurement, one step's for the next), as a long-lived client would;
	// nil: the attack's own, closed at its end.
	Pool *Pool
	// Share makes an open-loop attack one of Share.Of attackers of the
	// same plan: it sends only the requests i with i % Of == Index, at
	// their times in the whole plan, so that the shares of all attackers
	// together are exactly the whole plan's schedule. The zero value is
	// the whole plan.
	Share Share
	// Start is when the attack's clock starts (request 0 is due then); it
	// may be in the future, which is how attackers on several hosts start
	// on one timeline. Zero: now, once the connections are open.
	Start time.Time
}

// Share is attacker Index of Of.
type Share struct{ Index, Of int }

// of is the number of shares (1 for the zero value).
func (s Share) of() int { return max(s.Of, 1) }

// Pool is keep-alive connections that outlive an attack: worker i of every
// attack uses the pool's i-th set.
type Pool struct {
	mu      sync.Mutex
	timeout time.Duration
	workers []*conns
}

// NewPool makes an empty pool whose connects time out after timeout.
func NewPool(timeout time.Duration) *Pool { return &Pool{timeout: timeout} }

func (p *Pool) worker(i int) *conns {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.workers) <= i {
		p.workers = append(p.workers, newConns(p.timeout))
	}
	return p.workers[i]
}

// prepare opens every connection the attack's workers will use, before
// its clock starts, so that no measured request pays for a connect (a
// burst of hundreds of connects on the generator's core made most of a
// first second's sends late). A connect that fails here is tried again,
// and reported, by the request that needs it.
func (p *Pool) prepare(workers int, addrs []string) {
	type slot struct {
		c    *conns
		addr string
		k    *conn
	}
	var missing []*slot
	for i := 0; i < workers; i++ {
		c := p.worker(i)
		for _, addr := range addrs {
			if c.byAddr[addr] == nil {
				missing = append(missing, &slot{c: c, addr: addr})
			}
		}
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, m := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.k, _ = m.c.dial(m.addr)
		}()
	}
	wg.Wait()
	// Assigned here, not by the dialling goroutines, so that a worker's
	// map is only ever touched by one goroutine at a time and needs no
	// lock on the request path.
	for _, m := range missing {
		if m.k != nil {
			m.c.byAddr[m.addr] = m.k
		}
	}
}

// Close closes every connection of the pool.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.workers {
		c.close()
	}
	p.workers = nil
}

// Result is one request. Times are offsets from the attack's start.
type Result struct {
	// Due is when the request should have been sent (open loop), or when it
	// was sent (closed loop).
	Due time.Duration
	// Sent is when its first byte was written.
	Sent time.Duration
	// Done is when its response was complete, or the error happened.
	Done time.Duration
	// NoFreeConn: at its due time every connection was busy, so the request
	// waited for the target, not for the generator.
	NoFreeConn bool
	// GeneratorLag is how late the generator itself was: from the due time
	// to the first byte, or, when every connection was busy, to the
	// request's release by the pacer (the wait for a connection is the
	// target's doing and is in the latency, not here). Late sends of the
	// generator's own making invalidate a run.
	GeneratorLag time.Duration
	Code         uint16
	Err          string
	Target       int
	// Served is X-Routed-To, or X-Cell when there is none; Failover is
	// X-Failover-Reason; Version is X-Config-Version.
	Served, Failover, Version string
}

// Latency is from the due time to the complete response.
func (r *Result) Latency() time.Duration { return r.Done - r.Due }

// Attack runs the plan and returns every result in due order.
func Attack(p Plan) ([]Result, error) {
	if len(p.Requests) == 0 || p.Duration <= 0 || p.Conns <= 0 || p.Rate < 0 {
		return nil, errors.New("loadgen: a plan needs requests, a duration, connections and a rate >= 0")
	}
	if p.Share.Index < 0 || p.Share.Index >= p.Share.of() || (p.Share.Of > 1 && p.Rate == 0) {
		return nil, fmt.Errorf("loadgen: share %d of %d: want 0 <= index < of, on an open loop", p.Share.Index, p.Share.Of)
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if p.Pool == nil {
		p.Pool = NewPool(p.Timeout)
		defer p.Pool.Close()
	}
	p.Pool.prepare(p.Conns, addrsOf(p.Requests))
	a := &attack{plan: p, start: time.Now()}
	if !p.Start.IsZero() {
		// Through time.Now, so that the clock is monotonic even when the
		// start came from another host as a wall-clock time.
		a.start = a.start.Add(time.Until(p.Start))
	}
	if p.Rate > 0 {
		return a.openLoop()
	}
	return a.closedLoop(), nil
}

type attack struct {
	plan  Plan
	start time.Time
	// results is written by index: results[i] belongs to request i only.
	results []Result
}

func (a *attack) since() time.Duration { return time.Since(a.start) }

// openLoop releases requests on schedule to a pool of connection workers.
func (a *attack) openLoop() ([]Result, error) {
	p := a.plan
	interval := time.Second / time.Duration(p.Rate)
	// Request k of this share is request Index + k*Of of the whole plan.
	of, first := p.Share.of(), time.Duration(p.Share.Index)*interval
	total := (int(p.Duration/interval) - p.Share.Index + of - 1) / of
	step := interval * time.Duration(of)
	a.results = make([]Result, total)
	released := make(chan int, total)
	var idle atomic.Int64
	wait := a.eachConn(func(c *conns) {
		for {
			idle.Add(1)
			i, ok := <-released
			idle.Add(-1)
			if !ok {
				return
			}
			r := &a.results[i]
			c.do(r, p.Requests[(p.Share.Index+i*of)%len(p.Requests)], a.since)
			if !r.NoFreeConn {
				r.GeneratorLag = max(0, r.Sent-r.Due)
			}
		}
	})
	err := pace(a.start, first, step, total, func(i int) {
		r := &a.results[i]
		r.Due = first + time.Duration(i)*step
		if r.NoFreeConn = idle.Load() <= 0; r.NoFreeConn {
			r.GeneratorLag = max(0, a.since()-r.Due)
		}
		released <- i
	})
	close(released)
	wait()
	return a.results, err
}

// eachConn runs work on its own goroutine for each connection of the
// pool and returns a func that waits for all of them.
func (a *attack) eachConn(work func(*conns)) (wait func()) {
	var wg sync.WaitGroup
	for w := 0; w < a.plan.Conns; w++ {
		wg.Add(1)
		c := a.plan.Pool.worker(w)
		go func() {
			defer wg.Done()
			work(c)
		}()
	}
	return wg.Wait
}

// closedLoop keeps every connection busy until the duration is over.
func (a *attack) closedLoop() []Result {
	p := a.plan
	var next atomic.Int64
	var mu sync.Mutex
	var all []Result
	wait := a.eachConn(func(c *conns) {
		mine := make([]Result, 0, 1024)
		for a.since() < p.Duration {
			i := int(next.Add(1) - 1)
			var r Result
			c.do(&r, p.Requests[i%len(p.Requests)], a.since)
			r.Due = r.Sent
			mine = append(mine, r)
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	wait()
	sortByDue(all)
	return all
}

// pace calls release(i) for i in [0, total) at start + first + i*interval. It
// waits on a timerfd read through Go's netpoller: the poller's own timeout
// has millisecond resolution (an idle generator would send up to 1 ms late),
// while a timerfd wakes it within microseconds, and the pacer stays an
// ordinary goroutine, so releasing a request is a goroutine switch, not a
// hand-over between OS threads. Every request whose time has come is
// released at each wake-up: a late wake-up delays requests, never drops one.
func pace(start time.Time, first, interval time.Duration, total int, release func(int)) error {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("loadgen: timerfd: %w", err)
	}
	tf := os.NewFile(uintptr(fd), "pacer-timerfd")
	defer tf.Close()
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return err
	}
	// The monotonic clock's reading at start (just past, or ahead for a
	// start on a shared timeline).
	origin := time.Duration(now.Nano()) - time.Since(start)
	var expirations [8]byte
	for i := 0; i < total; {
		due := first + time.Duration(i)*interval
		if wait := due - time.Since(start); wait > 0 {
			spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(origin + due))}
			if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
				return fmt.Errorf("loadgen: timerfd: %w", err)
			}
			if _, err := tf.Read(expirations[:]); err != nil {
				return fmt.Errorf("loadgen: timerfd: %w", err)
			}
		}
		elapsed := time.Since(start)
		for i < total && first+time.Duration(i)*interval <= elapsed {
			release(i)
			i++
		}
	}
	return nil
}

func addrsOf(reqs []Request) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reqs {
		if !seen[r.Addr] {
			seen[r.Addr] = true
			out = append(out, r.Addr)
		}
	}
	return out
}

func sortByDue(rs []Result) {
	slices.SortFunc(rs, func(a, b Result) int { return cmp.Compare(a.Due, b.Due) })
}

// Encode builds the wire form of an HTTP/1.1 request with a Host field,
// the given fields in order, and Content-Length when there is a body.
func Encode(method, host, path string, fields [][2]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	for _, f := range fields {
		fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
	}
	if len(body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
