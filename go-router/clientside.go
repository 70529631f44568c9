package main

import (
	"errors"
	"flag"
	"net"
	"net/http"
	"time"

	"cellbench/go-router/guard"
)

// clientFlags are the client-side protection flags (contract section 5),
// the same names as the Pingora router's.
type clientFlags struct {
	headTimeoutMs     int64
	idleTimeoutMs     int64
	bodyIdleTimeoutMs int64
	maxConnections    int64
	shedRate          int64
	registry          *guard.Registry // set by protect
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.Int64Var(&c.headTimeoutMs, "client-head-timeout-ms", guard.DefaultHeadTimeout.Milliseconds(), "time a client has to send a whole request head (from the accept, or from its first byte on a kept-alive connection)")
	fs.Int64Var(&c.idleTimeoutMs, "client-idle-timeout-ms", guard.DefaultIdleTimeout.Milliseconds(), "how long a kept-alive client connection may wait for its next request")
	fs.Int64Var(&c.bodyIdleTimeoutMs, "client-body-idle-timeout-ms", guard.DefaultBodyIdleTimeout.Milliseconds(), "longest pause allowed while a client sends a request body")
	fs.Int64Var(&c.maxConnections, "max-client-connections", 0, "client connections kept open at most; 0 = (RLIMIT_NOFILE - 64) / 2")
	fs.Int64Var(&c.shedRate, "client-shed-rate", guard.DefaultShedRate, "client connections closed at --max-client-connections per second at most (shed or refused; newcomers wait in the listen backlog meanwhile); 0 = no limit")
	return c
}

func (c *clientFlags) validate() error {
	if c.headTimeoutMs <= 0 || c.idleTimeoutMs <= 0 || c.bodyIdleTimeoutMs <= 0 {
		return errors.New("--client-head-timeout-ms, --client-idle-timeout-ms and --client-body-idle-timeout-ms must be positive")
	}
	if c.maxConnections < 0 || c.shedRate < 0 {
		return errors.New("--max-client-connections and --client-shed-rate must not be negative")
	}
	return nil
}

// protect applies the settings to srv and returns ln with its connections
// counted and shed at the cap. ln yields the engine's sockets
// (engineListener): the guard wraps them, not the other way round.
func (c *clientFlags) protect(srv *http.Server, ln net.Listener) net.Listener {
	reg := guard.NewRegistry(guard.Options{
		HeadTimeout:     time.Duration(c.headTimeoutMs) * time.Millisecond,
		IdleTimeout:     time.Duration(c.idleTimeoutMs) * time.Millisecond,
		BodyIdleTimeout: time.Duration(c.bodyIdleTimeoutMs) * time.Millisecond,
		MaxConns:        int(c.maxConnections),
		ShedRate:        float64(c.shedRate),
	})
	reg.Protect(srv)
	c.registry = reg
	return reg.Listener(ln)
}

// stats are the registry's counts for /metrics (zeros before protect).
func (c *clientFlags) stats() (open int, shed, refused int64) {
	if c.registry == nil {
		return 0, 0, 0
	}
	return c.registry.Stats()
}
