// Command harness builds, starts and compares the cellbench routers.
//
//	harness compare            every scenario against the Go router, the Pingora router
//	                           and a direct baseline, plus the parity suite; writes reports/<UTC>/
//	harness run --scenario F --target go|pingora|direct
//	harness report DIR         re-render DIR/report.md and charts from DIR/results.json
//
// The harness is the load generator (vegeta as a library). It pins itself
// and the mock cells to the generator CPUs and each router to the router
// CPUs, so that both routers get the same CPU budget, stated in the report.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "harness",
		Short:         "Benchmark harness for the cellbench routers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(compareCmd(), runCmd(), crosscheckCmd(), reportCmd(), slowheadsCmd(), diffCmd())
	root.AddCommand(attackCmd(), barrierCmd(), mergeCmd(), k8sCmd())
	root.AddCommand(upCmd())

	// Ctrl-C or SIGTERM: stop every child before leaving, whatever the
	// harness was doing.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		logf("%v: stopping every process the harness started", sig)
		stopAll()
		os.Exit(130)
	}()

	if err := root.ExecuteContext(context.Background()); err != nil {
		stopAll()
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s harness: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
