// Package cell is one mock upstream cell: an HTTP server that echoes what it
// receives, shapes single answers through query knobs and injects faults set
// through its chaos state. The mockbackends binary runs several of them
// behind an admin API; tests and the harness may also run them in-process.
package cell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cellbench/config"
)

// DefaultHealthPath is the health endpoint when Options.HealthPath is empty.
const DefaultHealthPath = "/health"

// Options tune a cell. The zero value is a cell with health at /health
// that logs nowhere.
type Options struct {
	HealthPath string       // where GET answers the health probe; DefaultHealthPath if empty
	Logger     *slog.Logger // chaos changes and server errors
}

// Cell is one mock upstream. Its request path is lock-free: it reads the
// chaos state through an atomic pointer and counts with atomics. Lifecycle
// and chaos changes of one cell are serialised by mu; cells never share a lock.
type Cell struct {
	name       string
	healthPath string
	xCell      []string // the X-Cell header value, shared read-only by every response
	log        *slog.Logger

	chaos    atomic.Pointer[Chaos]
	counters Counters

	mu      sync.Mutex
	addr    string // where to listen; the bound address once bound, so a port 0 stays stable across down/up
	srv     *http.Server
	serving chan struct{} // closed when srv's Serve returns
	stopped bool          // Shutdown was called; the cell never listens again
}

// New makes a cell that will listen on addr (host:port, port 0 allowed)
// once Start is called.
func New(name, addr string, opts Options) (*Cell, error) {
	if !config.IsPlacementName(name) {
		// Cell names follow the placement name rule: they go into X-Cell.
		return nil, fmt.Errorf("cell name %q must be 1 to %d characters of A-Z a-z 0-9 . _ -", name, config.MaxPlacementNameBytes)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("cell %s: address %q must be host:port: %v", name, addr, err)
	}
	// A probe path may carry a query (health_check.path is free-form after
	// its leading /); requests are matched on the path alone.
	healthPath, _, _ := strings.Cut(opts.HealthPath, "?")
	if healthPath == "" {
		healthPath = DefaultHealthPath
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cell{name: name, healthPath: healthPath, xCell: []string{name}, log: logger, addr: addr}
	normal := NormalChaos
	c.chaos.Store(&normal)
	return c, nil
}

// Name is the cell's name (the placement it stands in for).
func (c *Cell) Name() string { return c.name }

// Addr is the address the cell listens on: the bound one once started.
func (c *Cell) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Counters are the cell's live counters.
func (c *Cell) Counters() *Counters { return &c.counters }

// Start binds the listener and serves in the background.
func (c *Cell) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ln, err := c.listenLocked()
	if err != nil {
		return err
	}
	c.serveLocked(ln)
	return nil
}

// listenLocked binds the cell's address, the one step of going up that can
// fail; serveLocked then starts answering on it.
func (c *Cell) listenLocked() (net.Listener, error) {
	if c.stopped {
		return nil, errors.New("cell " + c.name + " is shut down")
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", c.name, err)
	}
	c.addr = ln.Addr().String()
	return ln, nil
}

func (c *Cell) serveLocked(ln net.Listener) {
	srv := &http.Server{
		Handler: c,
		// Generous: routers under test keep idle pools, and slow-header
		// tests are the router's business, not the mock's.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	serving := make(chan struct{})
	go func() {
		defer close(serving)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("serve_failed", "cell", c.name, "error", err.Error())
		}
	}()
	c.srv, c.serving = srv, serving
}

// downLocked closes the listener and every open connection, so new connects
// are refused and requests in progress end abruptly.
func (c *Cell) downLocked() {
	if c.srv == nil {
		return
	}
	c.srv.Close()
	<-c.serving
	c.srv, c.serving = nil, nil
}

// Up reports whether the cell is listening.
func (c *Cell) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv != nil
}

// ApplyChaos applies a validated patch as one change: no request sees part
// of it. Only coming up can fail (the address may have been taken while the
// cell was down); then nothing of the patch is applied.
func (c *Cell) ApplyChaos(p ChaosPatch) (State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ln net.Listener // bound but not yet served: connects wait in the backlog
	if p.Down != nil && !*p.Down && c.srv == nil {
		var err error
		if ln, err = c.listenLocked(); err != nil {
			return c.stateLocked(), err
		}
	}
	if p.Down != nil && *p.Down {
		c.downLocked()
	}
	next := p.Apply(*c.chaos.Load())
	c.chaos.Store(&next)
	if ln != nil {
		c.serveLocked(ln)
	}
	c.log.Info("chaos_applied", "cell", c.name, "health", next.Health, "status", next.Status,
		"error_rate", next.ErrorRate, "delay_ms", next.DelayMs, "up", c.srv != nil)
	return c.stateLocked(), nil
}

// ResetChaos clears every fault and brings the cell up.
func (c *Cell) ResetChaos() (State, error) {
	normal, down := NormalChaos, false
	return c.ApplyChaos(ChaosPatch{Health: &normal.Health, Status: &normal.Status, ErrorRate: &normal.ErrorRate, DelayMs: &normal.DelayMs, Down: &down})
}

// State is a cell as GET /cells shows it.
type State struct {
	Address string     `json:"address"`
	Up      bool       `json:"up"`
	Chaos   ChaosState `json:"chaos"`
	CountersSnapshot
}

// ChaosState is the chaos as set through the API, down included.
type ChaosState struct {
	Chaos
	Down bool `json:"down"`
}

// State reads the cell's address, chaos and counters.
func (c *Cell) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked()
}

func (c *Cell) stateLocked() State {
	up := c.srv != nil
	return State{
		Address:          c.addr,
		Up:               up,
		Chaos:            ChaosState{Chaos: *c.chaos.Load(), Down: !up},
		CountersSnapshot: c.counters.Snapshot(),
	}
}

// Shutdown stops listening and waits for requests in progress until ctx
// ends, then closes what is left. The cell cannot be started again.
func (c *Cell) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.srv == nil {
		return nil
	}
	err := c.srv.Shutdown(ctx)
	if err != nil {
		c.srv.Close()
	}
	<-c.serving
	c.srv, c.serving = nil, nil
	return err
}
