package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gonum.org/v1/plot/vg/vgsvg"
)

// report.html is the report for a browser: one self-contained file (inline
// SVG charts and styles, no scripts, no network fetches) that opens from
// disk. It shows the verdict board first, then one section per scenario
// with its charts, its long tables folded away.

//go:embed report.html.tmpl
var htmlTemplate string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"cell": htmlCell}).Parse(htmlTemplate))

// HTMLName is the browser report's file name in a report directory.
const HTMLName = "report.html"

type htmlPage struct {
	Title, Commit, Budget, Rounds string
	Quick, ParitySkipped          bool
	Notes                         []string
	Board                         []boardRow
	Parity                        []ParityResult
	Scenarios                     []htmlScenario
}

// boardRow is one line of the verdict board.
type boardRow struct {
	Scenario, Question string
	// First marks the scenario's first line.
	First bool
	// Result is the winner, "no clear difference" or "no verdict"; Class
	// styles it.
	Result, Class        string
	Nginx, Direct, Bound string
	Text                 string
}

type htmlScenario struct {
	Name, Question, Setup, Reading string
	NotApplicable                  []string
	Headline                       table
	Charts                         []htmlChart
	Details                        []htmlDetails
}

type htmlChart struct {
	ID, Title string
	SVG       template.HTML
}

type htmlDetails struct {
	Summary string
	Table   table
}

// RenderHTML writes dir/report.html.
func RenderHTML(dir string, r *Results) error {
	page := htmlPage{
		Title:         "cellbench compare — " + r.StartedAt.Format("2006-01-02 15:04 UTC"),
		Commit:        orDash(r.Machine.GitCommit),
		Quick:         r.Quick,
		ParitySkipped: r.ParitySkipped,
		Parity:        r.Parity,
		Rounds:        fmt.Sprintf("%d interleaved rounds; figures are the median [min–max] over the valid rounds", max(r.Rounds, 1)),
	}
	if r.Machine.GitDirty {
		page.Commit += " (with uncommitted changes)"
	}
	quota := "no quota"
	if r.Budget.RouterCPUQuota > 0 {
		quota = fmt.Sprintf("a CFS quota of %.2f cores", r.Budget.RouterCPUQuota)
	}
	page.Budget = fmt.Sprintf("every proxy on CPU(s) %s with %s and %d worker(s); generator and cells on CPU(s) %s; %s, %d cores, %s",
		r.Budget.RouterCPUs, quota, r.Budget.RouterWorkers, r.Budget.GeneratorCPUs, orDash(r.Machine.CPUModel), r.Machine.Cores, orDash(r.Machine.Kernel))
	if len(r.Budget.TargetCPUQuota) > 0 {
		page.Notes = append(page.Notes, "Deliberately slowed (--target-cpu-quota): "+quotaList(r.Budget.TargetCPUQuota)+
			". Their own quota instead of the common one, to test harness diff; verdicts between targets on different budgets mean nothing.")
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		page.Board = append(page.Board, boardRows(s)...)
		hs, err := htmlScenarioOf(s)
		if err != nil {
			return err
		}
		page.Scenarios = append(page.Scenarios, hs)
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, page); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, HTMLName), b.Bytes(), 0o644)
}

// boardRows are the scenario's verdicts as board lines: for a comparison
// of two targets, each side's figure as a ratio of nginx's and direct's
// and, for capacity, what bound each side.
func boardRows(s *ScenarioResult) []boardRow {
	var out []boardRow
	for i, v := range s.Verdicts {
		row := boardRow{Scenario: s.Name, First: i == 0, Question: v.Question, Text: v.Text, Nginx: "—", Direct: "—", Bound: "—", Result: "—", Class: "info"}
		if f := FigureByKey(v.Figure); f != nil && len(v.Sides) == 2 {
			switch {
			case v.Winner != "":
				row.Result, row.Class = v.Winner, "win"
			case strings.HasPrefix(v.Text, "no clear difference"):
				row.Result, row.Class = "no clear difference", "tie"
			default:
				row.Result, row.Class = "no verdict", "none"
			}
			row.Nginx = ratios(s, f, v.Sides, TargetNginx)
			row.Direct = ratios(s, f, v.Sides, TargetDirect)
			if f.Capacity {
				var bounds []string
				for _, t := range v.Sides {
					if h := s.HeadlineOf(t); h != nil {
						bounds = append(bounds, t+" "+orDash(h.Bound))
					}
				}
				row.Bound = strings.Join(bounds, ", ")
			}
		}
		out = append(out, row)
	}
	return out
}

// ratios is each side's median of f over the anchor's ("—" when the
// anchor did not run).
func ratios(s *ScenarioResult, f *Figure, sides []string, anchor string) string {
	a := s.HeadlineOf(anchor)
	if a == nil || f.Get(a).Median <= 0 {
		return "—"
	}
	var parts []string
	for _, t := range sides {
		if h := s.HeadlineOf(t); h != nil && f.Get(h).N > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f×", t, f.Get(h).Median/f.Get(a).Median))
		}
	}
	return strings.Join(parts, ", ")
}

func htmlScenarioOf(s *ScenarioResult) (htmlScenario, error) {
	source := "file (watched)"
	if s.ControlPlane {
		source = "control plane (file is the bootstrap)"
	}
	hs := htmlScenario{
		Name: s.Name, Question: s.Question, Reading: reading(s), Headline: headlineTable(s),
		Setup: fmt.Sprintf("Config %s, config source: %s, access log: %s. Load: %s. SLO: success ≥ %s, p99 ≤ %g ms. Duration scale: %g.",
			s.Config, source, orDash(s.AccessLog), orDash(s.Load), pct(s.SLO.MinSuccess), s.SLO.MaxP99Ms, s.Scale),
	}
	for _, t := range AllTargets {
		if why := s.NotApplicable(t); why != "" {
			hs.NotApplicable = append(hs.NotApplicable, t+": "+why)
		}
	}
	charts, err := chartsOf(s)
	if err != nil {
		return hs, err
	}
	for _, c := range charts {
		svg, err := inlineSVG(c)
		if err != nil {
			return hs, err
		}
		id := strings.TrimSuffix(c.name, ".png")
		hs.Charts = append(hs.Charts, htmlChart{ID: id, Title: c.plot.Title.Text, SVG: svg})
	}
	hs.Details = append(hs.Details, htmlDetails{"Every round", roundsTable(s)})
	if s.Capacity {
		hs.Details = append(hs.Details, htmlDetails{"Capacity per round: probe, highest sustained step, bound", probesTable(s)},
			htmlDetails{"Every step of every round", stepsTable(s)})
	}
	if s.HasTimeline {
		hs.Details = append(hs.Details, htmlDetails{"Timeline actions (round 1) and what they caused", actionsTable(s)})
	}
	if hasPhases(s) {
		hs.Details = append(hs.Details, htmlDetails{"Phases between chaos actions (round 1)", phasesTable(s)})
	}
	return hs, nil
}

// svgPrelude is what vgsvg writes before the <svg> element (an XML
// declaration and a comment), which has no place inside an HTML page.
var svgPrelude = regexp.MustCompile(`(?s)^.*?(<svg )`)

// svgSize is vgsvg's size in points, which the page replaces by its own
// styles (the viewBox keeps the aspect).
var svgSize = regexp.MustCompile(`width="[0-9.]+pt" height="[0-9.]+pt"`)

// inlineSVG draws the chart as an <svg> element for the page.
func inlineSVG(c *chart) (template.HTML, error) {
	canvas := vgsvg.NewWith(vgsvg.UseWH(chartW+legendW, chartH))
	drawChart(c.plot, canvas)
	var b bytes.Buffer
	if _, err := canvas.WriteTo(&b); err != nil {
		return "", fmt.Errorf("chart %s: %w", c.name, err)
	}
	svg := svgPrelude.ReplaceAllString(b.String(), "$1")
	id := strings.TrimSuffix(c.name, ".png")
	svg = svgSize.ReplaceAllString(svg, fmt.Sprintf(`class="chart" role="img" data-chart=%q aria-label=%q`, id, template.HTMLEscapeString(c.plot.Title.Text)))
	return template.HTML(svg), nil
}

var bold = regexp.MustCompile(`\*\*(.+?)\*\*`)

// htmlCell escapes a table cell and turns its **bold** into <strong>.
func htmlCell(s string) template.HTML {
	return template.HTML(bold.ReplaceAllString(template.HTMLEscapeString(s), "<strong>$1</strong>"))
}
