package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"cellbench/harness/metrics"
)

// spectrumPoints are the percentiles of the latency spectrum, with their
// place on a log-percentile axis: log10(1/(1-p)), so that p90, p99, p99.9
// and p99.99 are evenly spaced, as HdrHistogram plots them.
var spectrumPoints = []struct {
	label string
	x     float64
	get   func(metrics.Latency) float64
}{
	{"p50", math.Log10(2), func(l metrics.Latency) float64 { return l.P50 }},
	{"p90", 1, func(l metrics.Latency) float64 { return l.P90 }},
	{"p99", 2, func(l metrics.Latency) float64 { return l.P99 }},
	{"p99.9", 3, func(l metrics.Latency) float64 { return l.P999 }},
	{"p99.99", 4, func(l metrics.Latency) float64 { return l.P9999 }},
}

// latencyOfRound is the latency a round's headline uses: the whole run, or
// a capacity staircase's first step (its fixed low rate).
func latencyOfRound(s *ScenarioResult, r *Run) metrics.Latency {
	if s.Capacity && len(r.Steps) > 0 {
		return r.Steps[0].Summary.Latency
	}
	return r.Summary.Latency
}

// spectrumChart: each target's latency percentiles p50 … p99.99 on a
// log-percentile axis, the median over its rounds as the line and the
// rounds' min–max as a band around it.
func spectrumChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	var bands []*plotter.Polygon
	for _, t := range AllTargets {
		// The valid rounds, as the headline uses; a target without any
		// (a quick run on a busy machine) shows the rounds it has.
		var rounds, any []metrics.Latency
		for _, r := range s.Rounds(t) {
			if l := latencyOfRound(s, r); l.Count > 0 {
				any = append(any, l)
				if usable(r) {
					rounds = append(rounds, l)
				}
			}
		}
		if len(rounds) == 0 {
			rounds = any
		}
		if len(rounds) == 0 {
			continue
		}
		var line, lo, hi plotter.XYs
		for _, pt := range spectrumPoints {
			vals := make([]float64, len(rounds))
			for i, l := range rounds {
				vals[i] = math.Max(pt.get(l), 0.01)
			}
			sp := metrics.SpreadOf(vals)
			line = append(line, plotter.XY{X: pt.x, Y: sp.Median})
			lo = append(lo, plotter.XY{X: pt.x, Y: sp.Min})
			hi = append(hi, plotter.XY{X: pt.x, Y: sp.Max})
		}
		ss = append(ss, series{target: t, xys: line})
		if len(rounds) > 1 {
			ring := append(append(plotter.XYs{}, lo...), reverseXYs(hi)...)
			band, err := plotter.NewPolygon(ring)
			if err != nil {
				return nil, err
			}
			r, g, b, _ := targetColor[t].RGBA()
			band.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 50}
			band.LineStyle.Width = 0
			bands = append(bands, band)
		}
	}
	if len(ss) == 0 {
		return nil, nil
	}
	title := s.Name + ": latency spectrum, median of the rounds, band: min–max"
	if s.Capacity {
		title = s.Name + ": latency spectrum at the first step, median of the rounds, band: min–max"
	}
	p := newPlot(title, "percentile (log scale of 1/(1-p))", "latency (ms, log)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	for _, b := range bands {
		p.Add(b)
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	padLog(p)
	p.X.Min, p.X.Max = 0, 4.2
	p.X.Tick.Marker = spectrumTicks{}
	return &chart{p, s.Name + "-latency.png"}, nil
}

func reverseXYs(xys plotter.XYs) plotter.XYs {
	out := make(plotter.XYs, len(xys))
	for i, xy := range xys {
		out[len(xys)-1-i] = xy
	}
	return out
}

// spectrumTicks label the spectrum's percentiles.
type spectrumTicks struct{}

func (spectrumTicks) Ticks(_, _ float64) []plot.Tick {
	ticks := make([]plot.Tick, len(spectrumPoints))
	for i, pt := range spectrumPoints {
		ticks[i] = plot.Tick{Value: pt.x, Label: pt.label}
	}
	return ticks
}
