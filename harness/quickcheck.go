package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"cellbench/harness/report"
)

// checkQuick is what `compare --quick` asserts about its own report, so
// that `make test` fails when a part of the pipeline stops producing its
// section: every applicable target of every scenario ran without an error,
// a capacity run has steps and a bound, the report has its verdict board,
// headline table and a section per scenario, and every chart it links
// exists. It asserts no verdict: a quick run's figures are not ones.
func checkQuick(out string, res *report.Results) error {
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		return err
	}
	var problems []string
	for _, want := range []string{"## Setup", "## Verdicts", "## Headline figures"} {
		if !strings.Contains(string(md), want) {
			problems = append(problems, "report.md has no "+want)
		}
	}
	for _, s := range res.Scenarios {
		if !strings.Contains(string(md), "## "+s.Name+"\n") {
			problems = append(problems, "report.md has no section for "+s.Name)
		}
		for _, r := range s.Runs {
			switch {
			case r.NotApplicable != "":
			case r.Error != "":
				problems = append(problems, fmt.Sprintf("%s against %s: %s", s.Name, r.Target, firstLineOf(r.Error)))
			case r.Summary.Requests == 0:
				problems = append(problems, fmt.Sprintf("%s against %s: no request", s.Name, r.Target))
			case s.Capacity && (len(r.Steps) == 0 || r.Bound == ""):
				problems = append(problems, fmt.Sprintf("%s against %s: no steps or no bound", s.Name, r.Target))
			}
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)]+\.png)\)`).FindAllStringSubmatch(string(md), -1) {
		if st, err := os.Stat(filepath.Join(out, m[1])); err != nil || st.Size() == 0 {
			problems = append(problems, "chart "+m[1]+" is linked but missing")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("quick compare: %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}
