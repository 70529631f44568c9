package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// The start barrier of distributed attacks (`harness barrier`): every
// attacker measures its clock against the barrier's (GET /clock), then
// arrives (POST /arrive?share=I&of=N) and is answered, once all N shares
// have arrived, with one start time on the barrier's clock, a lead after
// the last arrival. The barrier exits when every share has its answer.

// barrier collects the shares' arrivals.
type barrier struct {
	parties int
	lead    time.Duration
	now     func() time.Time

	mu       sync.Mutex
	arrived  map[int]bool
	answered map[int]bool
	start    time.Time
	// open closes when the last share arrives; done when every share has
	// been answered.
	open, done chan struct{}
}

func newBarrier(parties int, lead time.Duration) *barrier {
	return &barrier{parties: parties, lead: lead, now: time.Now, arrived: map[int]bool{}, answered: map[int]bool{},
		open: make(chan struct{}), done: make(chan struct{})}
}

// clockReply is GET /clock's answer; arriveReply POST /arrive's.
type clockReply struct {
	Now time.Time `json:"now"`
}

type arriveReply struct {
	Start time.Time `json:"start"`
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/clock":
		writeJSON(w, http.StatusOK, clockReply{Now: b.now()})
	case r.Method == http.MethodPost && r.URL.Path == "/arrive":
		b.arrive(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "GET /clock or POST /arrive?share=I&of=N"})
	}
}

func (b *barrier) arrive(w http.ResponseWriter, r *http.Request) {
	share, err1 := strconv.Atoi(r.URL.Query().Get("share"))
	of, err2 := strconv.Atoi(r.URL.Query().Get("of"))
	if err1 != nil || err2 != nil || of != b.parties || share < 0 || share >= of {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("want share=I&of=%d with 0 <= I < %d", b.parties, b.parties)})
		return
	}
	b.mu.Lock()
	if !b.arrived[share] {
		b.arrived[share] = true
		if len(b.arrived) == b.parties {
			b.start = b.now().Add(b.lead)
			close(b.open)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-r.Context().Done():
		// The attacker gave up; it may arrive again (a retry is the same
		// share), so its arrival stands.
		return
	}
	b.mu.Lock()
	start := b.start
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, arriveReply{Start: start})
	b.mu.Lock()
	b.answered[share] = true
	if len(b.answered) == b.parties {
		select {
		case <-b.done:
		default:
			close(b.done)
		}
	}
	b.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func barrierCmd() *cobra.Command {
	var listen string
	var parties int
	var lead, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "barrier --parties N",
		Short: "The start barrier of N distributed attackers: their clock reference and one shared start time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if parties < 1 || lead <= 0 || timeout <= 0 {
				return errors.New("barrier: want --parties >= 1, --lead > 0, --timeout > 0")
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			logf("barrier on %s for %d shares, start %s after the last arrival", l.Addr(), parties, lead)
			return serveBarrier(cmd.Context(), l, newBarrier(parties, lead), timeout)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":7070", "listen address")
	cmd.Flags().IntVar(&parties, "parties", 0, "number of attackers (required)")
	cmd.Flags().DurationVar(&lead, "lead", 3*time.Second, "start this long after the last attacker arrives (the time to answer every attacker and for each to get ready)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up when the attackers have not all arrived and been answered by then")
	cmd.MarkFlagRequired("parties")
	return cmd
}

// serveBarrier serves b on l until every share has its start, or timeout.
func serveBarrier(ctx context.Context, l net.Listener, b *barrier, timeout time.Duration) error {
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(l) }()
	var err error
	select {
	case <-b.done:
		logf("barrier: every share has its start, %s", b.start.UTC().Format(time.RFC3339Nano))
	case <-time.After(timeout):
		b.mu.Lock()
		err = fmt.Errorf("barrier: %d of %d shares arrived within %s", len(b.arrived), b.parties, timeout)
		b.mu.Unlock()
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return err
}
