package report

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"cellbench/harness/browser"
)

// ScreenshotName is the browser's picture of report.html, beside it.
const ScreenshotName = "report.png"

// HTMLCheck is what headless Chromium saw of a report.html.
type HTMLCheck struct {
	// Charts counts the charts drawn; Board the verdict board's lines.
	Charts, Board int
	// Problems are what is wrong: a chart not drawn or of the wrong size,
	// an error the page logged, a fetch of anything but the page itself.
	Problems []string
}

// chartProbe is what the page reports of each <figure>: the size of its
// SVG as laid out, and how many of its paths are drawn in a target colour
// (the data, as opposed to axes and grid).
const chartProbe = `(() => {
  const colours = %s;
  const charts = [];
  for (const f of document.querySelectorAll('figure')) {
    const svg = f.querySelector('svg.chart');
    if (!svg) { charts.push({id: f.id, missing: true}); continue; }
    const r = svg.getBoundingClientRect();
    let data = 0;
    for (const p of svg.querySelectorAll('path')) {
      const st = (p.getAttribute('style') || '').toUpperCase();
      if (colours.some(c => st.includes(c))) data++;
    }
    charts.push({id: f.id, w: r.width, h: r.height, data: data, vb: svg.viewBox.baseVal ? svg.viewBox.baseVal.width / svg.viewBox.baseVal.height : 0});
  }
  return {charts: charts, board: document.querySelectorAll('table.board tr').length - 1};
})()`

// screenshotMaxHeight caps report.png: a full compare's verdict board
// alone is some 5 000 pixels, and the first scenarios' charts follow it.
const screenshotMaxHeight = 9000

// minChartWidth is the least width in CSS pixels a chart must be laid out
// at in a 1280-pixel viewport.
const minChartWidth = 600

// CheckHTML opens dir/report.html in headless Chromium (bin), checks that
// every chart is drawn at its expected size and that the page logs no
// error and fetches nothing, and writes dir/report.png, a screenshot of
// the page from its top.
func CheckHTML(ctx context.Context, bin, dir string) (*HTMLCheck, error) {
	page, err := filepath.Abs(filepath.Join(dir, HTMLName))
	if err != nil {
		return nil, err
	}
	s, err := browser.Start(ctx, bin, 1280)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	url := "file://" + page
	if err := s.Navigate(ctx, url); err != nil {
		return nil, err
	}
	var colours []string
	for _, c := range targetColor {
		colours = append(colours, hexColour(c))
	}
	js, _ := json.Marshal(colours)
	var got struct {
		Charts []struct {
			ID      string
			Missing bool
			W, H    float64
			Data    int
			VB      float64
		}
		Board int
	}
	if err := s.Eval(ctx, fmt.Sprintf(chartProbe, js), &got); err != nil {
		return nil, err
	}
	c := &HTMLCheck{Board: got.Board}
	aspect := float64((chartW + legendW) / chartH)
	for _, ch := range got.Charts {
		switch {
		case ch.Missing:
			c.Problems = append(c.Problems, fmt.Sprintf("figure %s has no chart", ch.ID))
		case ch.W < minChartWidth || ch.H <= 0 || math.Abs(ch.W/ch.H-aspect) > 0.05*aspect:
			c.Problems = append(c.Problems, fmt.Sprintf("chart %s laid out at %.0f×%.0f px (want ≥ %d wide, aspect %.2f)", ch.ID, ch.W, ch.H, minChartWidth, aspect))
		case ch.Data == 0:
			c.Problems = append(c.Problems, fmt.Sprintf("chart %s draws no data (no path in a target colour)", ch.ID))
		default:
			c.Charts++
		}
	}
	if got.Board == 0 && hasVerdicts(dir) {
		c.Problems = append(c.Problems, "the verdict board has no line")
	}
	c.Problems = append(c.Problems, s.Problems()...)
	for _, f := range s.Fetched() {
		if f != url {
			c.Problems = append(c.Problems, "fetched "+f+" (the page must be self-contained)")
		}
	}
	if err := s.Screenshot(ctx, filepath.Join(dir, ScreenshotName), screenshotMaxHeight); err != nil {
		return nil, err
	}
	return c, nil
}

// hasVerdicts reports whether dir/results.json has a verdict to show (a
// run of one target, such as one remote router, has none); true when it
// cannot be read, so that a broken report is not excused.
func hasVerdicts(dir string) bool {
	res, err := ReadJSON(dir)
	if err != nil {
		return true
	}
	for _, s := range res.Scenarios {
		if len(s.Verdicts) > 0 {
			return true
		}
	}
	return false
}

func hexColour(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return strings.ToUpper(fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8))
}
