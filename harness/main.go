// Command harness builds, starts and compares the cellbench routers.
//
// `harness compare` is the README's main command. The scenario runner and
// report writer are not built yet; until they are, compare says so and exits
// non-zero rather than pretending to have measured anything.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var errNotYet = errors.New("harness compare is not built yet: the routers, mock backends and control plane come first (see docs/architecture.md)")

func main() {
	root := &cobra.Command{
		Use:           "harness",
		Short:         "Benchmark harness for the cellbench routers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "compare",
		Short: "Build everything, run the scenarios against both routers and a direct baseline, write reports/",
		RunE:  func(*cobra.Command, []string) error { return errNotYet },
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}
