package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cellbench/harness/browser"
	"cellbench/harness/report"
)

// checkInBrowser opens the report's report.html in headless Chromium when
// one is installed, writes report.png beside it, and returns what the
// browser found wrong (a chart not drawn, an error logged, a fetch). Without
// Chromium it says so and does nothing.
func checkInBrowser(ctx context.Context, log func(string, ...any), dir string) error {
	bin, err := browser.Find()
	if err != nil {
		log("no %s and no screenshot: %v", report.ScreenshotName, err)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := report.CheckHTML(ctx, bin, dir)
	if err != nil {
		return fmt.Errorf("%s in Chromium: %w", report.HTMLName, err)
	}
	log("%s: %d charts drawn, %d verdict lines; screenshot %s", filepath.Join(dir, report.HTMLName), c.Charts, c.Board, filepath.Join(dir, report.ScreenshotName))
	if len(c.Problems) > 0 {
		return fmt.Errorf("%s in Chromium: %s", report.HTMLName, strings.Join(c.Problems, "; "))
	}
	return nil
}

// printDigest prints the report's digest on stdout when --json asks.
func (o *options) printDigest(dir string) error {
	if !o.jsonOut {
		return nil
	}
	res, err := report.ReadJSON(dir)
	if err != nil {
		return err
	}
	return report.WriteJSONTo(os.Stdout, report.DigestOf(dir, res))
}
