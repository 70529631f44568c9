package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Target colours: the same in every chart.
var targetColor = map[string]color.Color{
	TargetGo:           color.RGBA{R: 0, G: 125, B: 156, A: 255},   // Go's brand blue
	TargetGoTuned:      color.RGBA{R: 0, G: 60, B: 90, A: 255},     // a darker Go blue
	TargetGoFloor:      color.RGBA{R: 110, G: 190, B: 215, A: 255}, // a lighter Go blue
	TargetPingoraFloor: color.RGBA{R: 250, G: 190, B: 130, A: 255}, // a lighter orange
	TargetPingora:      color.RGBA{R: 243, G: 128, B: 32, A: 255},  // Cloudflare orange
	TargetNginx:        color.RGBA{R: 0, G: 150, B: 57, A: 255},    // nginx green
	TargetDirect:       color.RGBA{R: 120, G: 120, B: 120, A: 255},
}

const chartW, chartH = 7 * vg.Inch, 3.6 * vg.Inch

// chart is one drawn plot and the file name of its PNG (stem.png).
type chart struct {
	plot *plot.Plot
	name string
}

// series is one target's line; a round after the first has no legend
// entry of its own (the rounds of a target share its colour).
type series struct {
	target string
	xys    plotter.XYs
	round  int
	dashed bool
}

// firstRounds is the first round of every target that ran: the detail
// charts show it.
func firstRounds(s *ScenarioResult) []*Run {
	var out []*Run
	for _, t := range AllTargets {
		if r := s.Run(t); r != nil {
			out = append(out, r)
		}
	}
	return out
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// addSeries draws one line with points per target, in target order.
func addSeries(p *plot.Plot, ss []series) error {
	for _, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return err
		}
		c := targetColor[s.target]
		l.Color, pts.Color = c, c
		l.Width = vg.Points(1.5)
		pts.Radius = vg.Points(2)
		pts.Shape = draw.CircleGlyph{}
		if s.target == TargetDirect || IsFloor(s.target) || s.dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l, pts)
		if s.round <= 1 {
			p.Legend.Add(s.target, l, pts)
		}
	}
	return nil
}

// empty reports whether no series has a point (a chart would say nothing).
func empty(ss []series) bool {
	for _, s := range ss {
		if len(s.xys) > 0 {
			return false
		}
	}
	return true
}

// logY puts the Y axis on a log scale, lifting values to floor (a log axis
// cannot show 0).
func logY(p *plot.Plot, ss []series, floor float64) {
	for _, s := range ss {
		for i := range s.xys {
			s.xys[i].Y = math.Max(s.xys[i].Y, floor)
		}
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
}

// padLog widens a log axis by a third of a step on both sides, so that the
// extreme points are not on the frame and the ticks around them show.
func padLog(p *plot.Plot) {
	p.Y.Min /= 1.4
	p.Y.Max *= 1.4
}

// logTicks labels 1-2-5 steps of each decade, so that a log axis spanning
// less than a decade still has numbers on it (plot.LogTicks labels only
// powers of ten).
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = tickLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	labelled := 0
	for _, t := range ticks {
		if t.Label != "" {
			labelled++
		}
	}
	if labelled < 3 {
		// A narrow range: label every tick rather than leave a line with
		// no number near it.
		for i := range ticks {
			ticks[i].Label = tickLabel(ticks[i].Value)
		}
	}
	return ticks
}

// tickLabel prints a 1-2-5 step without the float noise of m × 10^e
// (0.7000000000000001).
func tickLabel(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// markActions draws a dashed vertical line at each timeline action of the
// first router run (the offsets are the same for every target), from y0 to
// y1.
func markActions(p *plot.Plot, s *ScenarioResult, y0, y1 float64) error {
	for _, r := range firstRounds(s) {
		if len(r.Actions) == 0 {
			continue
		}
		for _, a := range r.Actions {
			x := a.AtMs / 1000
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: y0}, {X: x, Y: y1}})
			if err != nil {
				return err
			}
			l.Color = color.Gray{Y: 170}
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			p.Add(l)
		}
		return nil
	}
	return nil
}

func yRange(ss []series) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, xy := range s.xys {
			lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
		}
	}
	return lo, hi
}

// legendW is the strip right of the plot that holds the legend, where it
// can hide no data point.
const legendW = 1.35 * vg.Inch

// drawChart draws p with its legend in the strip on its right.
func drawChart(p *plot.Plot, c vg.CanvasSizer) {
	dc := draw.New(c)
	legend := p.Legend
	p.Legend = plot.NewLegend()
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Top, legend.Left = true, true
	legend.XOffs, legend.YOffs = vg.Points(6), -vg.Points(20)
	legend.Draw(draw.Crop(dc, chartW, 0, 0, 0))
	p.Legend = legend
}

// savePNG writes the chart as dir/name.
func savePNG(p *plot.Plot, dir, name string) error {
	img := vgimg.NewWith(vgimg.UseWH(chartW+legendW, chartH), vgimg.UseBackgroundColor(color.White))
	drawChart(p, img)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", name, err)
	}
	return f.Close()
}

// latencyTimeChart: p99 per second of each target's run.
func latencyTimeChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	for _, r := range firstRounds(s) {
		var xys plotter.XYs
		for _, sec := range r.Timeline {
			if sec.Requests > 0 {
				xys = append(xys, plotter.XY{X: float64(sec.Second), Y: sec.P99})
			}
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": p99 latency per second", timeAxis(s), "p99 (ms, log)")
	p.X.Tick.Marker = plainTicks{}
	logY(p, ss, 0.01)
	lo, hi := yRange(ss)
	if err := markActions(p, s, lo, hi); err != nil {
		return nil, err
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	padLog(p)
	return &chart{p, s.Name + "-latency-time.png"}, nil
}

// timeAxis labels the X axis of per-second charts.
func timeAxis(s *ScenarioResult) string {
	if s.HasTimeline {
		return "second of the run (by send time); dashed: timeline actions"
	}
	if s.Capacity {
		return "second of the staircase (by send time), pauses included"
	}
	return "second of the run (by send time)"
}

// successChart: the share of 2xx answers per second.
func successChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	for _, r := range firstRounds(s) {
		var xys plotter.XYs
		for _, sec := range r.Timeline {
			if sec.Requests > 0 {
				xys = append(xys, plotter.XY{X: float64(sec.Second), Y: 100 * sec.SuccessRate})
			}
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": success rate per second (2xx)", timeAxis(s), "success (%)")
	p.X.Tick.Marker = plainTicks{}
	p.Y.Min, p.Y.Max = 0, 101
	if err := markActions(p, s, 0, 100); err != nil {
		return nil, err
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	return &chart{p, s.Name + "-success.png"}, nil
}

// visibilityChart: the version timeline. At each config change (x, its
// time in the run), the time until every client saw the new version or a
// newer one (y). A change that never reached every client has no point.
func visibilityChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	for _, r := range firstRounds(s) {
		if r.Target == TargetDirect {
			continue
		}
		var xys plotter.XYs
		for _, a := range r.Actions {
			if a.Visibility != nil && a.Visibility.AllAfterMs >= 0 {
				xys = append(xys, plotter.XY{X: a.AtMs / 1000, Y: a.Visibility.AllAfterMs})
			}
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": time until every client saw each new config version", "second of the run at which the config changed", "ms until every client saw it (log)")
	p.X.Tick.Marker = plainTicks{}
	logY(p, ss, 1)
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	padLog(p)
	return &chart{p, s.Name + "-versions.png"}, nil
}
