package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// finalSteps drops the first try of each step that was repeated, so a
// chart shows one point per rate: the result that counted.
func finalSteps(steps []Step) []Step {
	var out []Step
	for i, st := range steps {
		if i+1 < len(steps) && steps[i+1].Retry && steps[i+1].Rate == st.Rate {
			continue
		}
		out = append(out, st)
	}
	return out
}

// capacityChart: answered (2xx) rate against offered rate, per step.
func capacityChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	maxRate := 0.0
	for _, r := range firstRounds(s) {
		var xys plotter.XYs
		for _, st := range finalSteps(r.Steps) {
			xys = append(xys, plotter.XY{X: float64(st.Rate), Y: st.Summary.Throughput})
			maxRate = math.Max(maxRate, float64(st.Rate))
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": 2xx throughput vs offered rate", "offered rate (req/s)", "2xx answered (req/s)")
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	if maxRate > 0 {
		ideal, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxRate, Y: maxRate}})
		if err != nil {
			return nil, err
		}
		ideal.Color = color.Gray{Y: 190}
		ideal.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(ideal)
		p.Legend.Add("offered", ideal)
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	return &chart{p, s.Name + "-capacity.png"}, nil
}

// stepChart draws one figure of every step against the offered rate, one
// line per target and round (the latency-vs-rate curve and its spread).
func stepChart(s *ScenarioResult, file, title, ylabel string, logScale bool, get func(Step) (float64, bool)) (*chart, error) {
	var ss []series
	for _, r := range s.Runs {
		var xys plotter.XYs
		for _, st := range finalSteps(r.Steps) {
			if v, ok := get(st); ok {
				xys = append(xys, plotter.XY{X: float64(st.Rate), Y: v})
			}
		}
		ss = append(ss, series{target: r.Target, xys: xys, round: r.Round})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": "+title, "offered rate (req/s)", ylabel)
	p.X.Tick.Marker = plainTicks{}
	if logScale {
		logY(p, ss, 0.01)
	} else {
		p.Y.Tick.Marker = plainTicks{}
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	if logScale {
		padLog(p)
	}
	return &chart{p, s.Name + "-" + file + ".png"}, nil
}

func capacityP50Chart(s *ScenarioResult) (*chart, error) {
	return stepChart(s, "capacity-p50", "p50 latency vs offered rate, every round", "p50 (ms, log)", true, func(st Step) (float64, bool) {
		return st.Summary.Latency.P50, st.Summary.Latency.Count > 0
	})
}

func capacityP99Chart(s *ScenarioResult) (*chart, error) {
	return stepChart(s, "capacity-p99", "p99 latency vs offered rate, every round", "p99 (ms, log)", true, func(st Step) (float64, bool) {
		return st.Summary.Latency.P99, st.Summary.Latency.Count > 0
	})
}

func capacityCPUChart(s *ScenarioResult) (*chart, error) {
	return stepChart(s, "capacity-cpu", "proxy CPU per request vs offered rate, every round", "proxy CPU (µs/request)", false, func(st Step) (float64, bool) {
		return st.Router.CPUPerRequestUs(), st.Router != nil && st.Summary.Requests > 0
	})
}
