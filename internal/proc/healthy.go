package proc

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// WaitHealthy polls GET url until it answers 200, and fails when the child
// exits first, timeout passes or ctx ends.
func (p *Process) WaitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited during startup (%v): %s", p.name, p.err, p.StderrTail())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s within %v (last: %v): %s", p.name, url, timeout, err, p.StderrTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
		case <-time.After(pollEvery):
		}
	}
}
