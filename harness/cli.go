package main

import (
	"strings"

	"github.com/spf13/cobra"

	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func compareCmd() *cobra.Command {
	var o options
	var only string
	var skipParity bool
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Build everything, run the scenarios against both routers and a direct baseline, run the parity suite, write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(remote.targets) > 0 {
				return compareRemote(cmd.Context(), &o, &remote, only)
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			scs, err := loadScenarios(e, o.scenarios, only)
			if err != nil {
				return err
			}
			targets, err := parseTargets(o.targets)
			if err != nil {
				return err
			}
			if err := compare(cmd.Context(), e, scs, targets, out, !skipParity && !o.quick); err != nil {
				return err
			}
			return o.printDigest(out)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&only, "only", "", "comma-separated scenario names to run (default all)")
	cmd.Flags().BoolVar(&skipParity, "skip-parity", false, "do not run the parity suite")
	remote.register(cmd)
	return cmd
}

func runCmd() *cobra.Command {
	var o options
	var file, target string
	cmd := &cobra.Command{
		Use:   "run --scenario FILE --target NAME",
		Short: "Run one scenario against one target and write a report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parseTargets(target); err != nil {
				return err
			}
			e, out, err := o.prepare()
			if err != nil {
				return err
			}
			sc, err := scenario.Load(file, e.root)
			if err != nil {
				return err
			}
			if err := compare(cmd.Context(), e, []*scenario.Scenario{sc}, []string{target}, out, false); err != nil {
				return err
			}
			return o.printDigest(out)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&file, "scenario", "", "scenario file (required)")
	cmd.Flags().StringVar(&target, "target", "", strings.Join(report.AllTargets, ", ")+" (required)")
	cmd.MarkFlagRequired("scenario")
	cmd.MarkFlagRequired("target")
	return cmd
}

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Recompute the headline and verdicts of DIR/results.json and re-render DIR/report.md, its charts, report.html and report.png",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := report.ReadJSON(args[0])
			if err != nil {
				return err
			}
			// Headline and verdicts follow today's rules, whatever the
			// harness that measured the runs computed.
			for i := range res.Scenarios {
				report.Aggregate(&res.Scenarios[i], res.Budget)
			}
			if err := report.WriteJSON(args[0], res); err != nil {
				return err
			}
			if err := report.Render(args[0], res); err != nil {
				return err
			}
			return checkInBrowser(cmd.Context(), logf, args[0])
		},
	}
}
