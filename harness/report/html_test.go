package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellbench/harness/browser"
)

// TestHTMLInBrowser renders the synthetic results and opens report.html in
// headless Chromium: every chart drawn at its size, no error logged,
// nothing fetched, and a screenshot kept beside the report.
func TestHTMLInBrowser(t *testing.T) {
	bin, err := browser.Find()
	if err != nil {
		t.Fatalf("the browser test needs Chromium (the README's prerequisites, .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	res := syntheticResults()
	if err := Render(dir, res); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := CheckHTML(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Problems {
		t.Error(p)
	}
	want := 0
	for i := range res.Scenarios {
		charts, err := chartsOf(&res.Scenarios[i])
		if err != nil {
			t.Fatal(err)
		}
		want += len(charts)
	}
	if c.Charts != want || want < 8 {
		t.Errorf("%d charts drawn, want %d", c.Charts, want)
	}
	if c.Board == 0 {
		t.Error("no verdict board")
	}
	b, err := os.ReadFile(filepath.Join(dir, ScreenshotName))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if img.Bounds().Dx() < 1000 || img.Bounds().Dy() < 2000 {
		t.Errorf("screenshot %v: want the page's width and more than one screen", img.Bounds())
	}

	// A page that breaks the rules is caught: a chart without data, a
	// fetch, an error in the console.
	page := filepath.Join(dir, HTMLName)
	html, _ := os.ReadFile(page)
	broken := strings.Replace(string(html), "</body>", `<figure id="empty"><svg class="chart" viewBox="0 0 583 259"></svg></figure><img src="https://example.invalid/x.png"><script>console.error("boom")</script></body>`, 1)
	if err := os.WriteFile(page, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = CheckHTML(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.Problems, "\n")
	for _, want := range []string{"chart empty", "example.invalid", "boom"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}
