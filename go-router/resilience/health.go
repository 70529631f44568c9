package resilience

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"cellbench/config"
)

// Health is a placement's health status. It starts healthy; only its
// checker changes it, and requests only read it, so probes never block a
// request.
type Health struct {
	unhealthy atomic.Bool
}

// Unhealthy reports whether the placement is marked unhealthy.
func (h *Health) Unhealthy() bool { return h.unhealthy.Load() }

// Status is "healthy" or "unhealthy" (admin, health_changed).
func (h *Health) Status() string {
	if h.unhealthy.Load() {
		return "unhealthy"
	}
	return "healthy"
}

// Reset marks the placement healthy again (its health check was removed)
// and reports whether it was unhealthy.
func (h *Health) Reset() bool { return h.unhealthy.CompareAndSwap(true, false) }

// Checker probes one endpoint on its own goroutine until closed.
type Checker struct {
	settings config.HealthCheck
	stop     context.CancelFunc
	done     chan struct{}
}

// StartChecker begins probing at once and then every interval. onChange
// is called from the checker goroutine on every transition.
func StartChecker(parent context.Context, client *http.Client, name, endpoint string, settings config.HealthCheck, h *Health, onChange func(name, from, to string)) *Checker {
	ctx, cancel := context.WithCancel(parent)
	c := &Checker{settings: settings, stop: cancel, done: make(chan struct{})}
	url := trimSlash(endpoint) + settings.Path
	go func() {
		defer close(c.done)
		interval := time.Duration(settings.IntervalMs) * time.Millisecond
		timeout := time.Duration(settings.TimeoutMs) * time.Millisecond
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		var successes, failures int64
		for {
			ok := probe(ctx, client, url, timeout)
			if ctx.Err() != nil {
				return
			}
			if ok {
				successes, failures = successes+1, 0
				if successes >= settings.HealthyThreshold && h.unhealthy.CompareAndSwap(true, false) {
					onChange(name, "unhealthy", "healthy")
				}
			} else {
				successes, failures = 0, failures+1
				if failures >= settings.UnhealthyThreshold && h.unhealthy.CompareAndSwap(false, true) {
					onChange(name, "healthy", "unhealthy")
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return c
}

// Settings are the settings the checker probes with.
func (c *Checker) Settings() config.HealthCheck { return c.settings }

// Close stops the checker and waits for its goroutine to end.
func (c *Checker) Close() {
	c.stop()
	<-c.done
}

// probe sends one GET; a 2xx within the timeout is a success.
func probe(ctx context.Context, client *http.Client, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "cellbench-health/1")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	// Drain a little so the connection can be reused for the next probe.
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func trimSlash(endpoint string) string {
	if n := len(endpoint); n > 0 && endpoint[n-1] == '/' {
		return endpoint[:n-1]
	}
	return endpoint
}

// NewProbeClient is shared by all checkers; probes keep a connection per
// endpoint, separate from the request pool so that a saturated pool never
// delays a probe.
func NewProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
