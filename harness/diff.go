package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"cellbench/harness/report"
)

// diffCmd compares two reports figure by figure (report.DiffResults).
func diffCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two reports (directories or results.json files) figure by figure and say which differences are beyond noise",
		Long: `diff compares every headline figure (capacity, p50, p99, proxy CPU per request)
of every target and scenario that both reports have, with the median and
min–max of each over its rounds. A difference is beyond noise by the rule the
verdicts use: at least two valid rounds a side and min–max ranges that do not
overlap (a capacity also needs both sides bound by the router).`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			a, err := report.ReadJSON(args[0])
			if err != nil {
				return err
			}
			b, err := report.ReadJSON(args[1])
			if err != nil {
				return err
			}
			d := report.DiffResults(a, b)
			d.A, d.B = args[0], args[1]
			if jsonOut {
				return report.WriteJSONTo(os.Stdout, d)
			}
			_, err = fmt.Print(d.Text())
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the diff as JSON (report.Diff)")
	return cmd
}
