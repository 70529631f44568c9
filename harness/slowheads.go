package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"cellbench/harness/report"
	"cellbench/internal/slowclient"
)

// slowheadsCmd is the slow-head attacker the slow_clients scenario runs
// as a child process: it attacks for the duration, then prints what it did
// as one JSON line (report.AttackStats).
func slowheadsCmd() *cobra.Command {
	var o slowclient.Options
	var d time.Duration
	cmd := &cobra.Command{
		Use:    "slowheads --addr HOST:PORT --conns N --duration D",
		Short:  "Run a slow-head attack (the slow_clients scenario's attacker)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), d)
			defer cancel()
			var stats slowclient.Stats
			var peak int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				slowclient.Attack(ctx, o, &stats)
			}()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
		watch:
			for {
				peak = max(peak, stats.Snapshot().Open)
				select {
				case <-done:
					break watch
				case <-t.C:
				}
			}
			s := stats.Snapshot()
			return json.NewEncoder(os.Stdout).Encode(report.AttackStats{Conns: o.Conns, Dials: s.Dials, DialErrors: s.DialErrors,
				ClosedByServer: s.ClosedByServer, PeakOpen: peak})
		},
	}
	cmd.Flags().StringVar(&o.Addr, "addr", "", "host:port under attack")
	cmd.Flags().IntVar(&o.Conns, "conns", 1000, "attack connections kept open")
	cmd.Flags().DurationVar(&o.ByteInterval, "byte-interval", time.Second, "pause between two bytes of a head")
	cmd.Flags().DurationVar(&d, "duration", 10*time.Second, "how long the attack lasts")
	cmd.MarkFlagRequired("addr")
	return cmd
}
