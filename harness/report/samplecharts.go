package report

import (
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// plainTicks are the default ticks labelled without trailing decimals
// (gonum's default prints 5000 as "5000.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}

// sampleChart draws one figure of the proxy's samples over the run, round
// 1 of every target.
func sampleChart(s *ScenarioResult, file, title, ylabel string, get func(ProcSample) float64) (*chart, error) {
	var ss []series
	for _, r := range firstRounds(s) {
		var xys plotter.XYs
		for _, sm := range r.Samples {
			xys = append(xys, plotter.XY{X: sm.AtMs / 1000, Y: get(sm)})
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": "+title, timeAxis(s), ylabel)
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	return &chart{p, s.Name + "-" + file + ".png"}, nil
}

func fdChart(s *ScenarioResult) (*chart, error) {
	return sampleChart(s, "fds", "open descriptors of the proxy (direct: the cells)", "descriptors", func(sm ProcSample) float64 { return float64(sm.FDs) })
}

func rssChart(s *ScenarioResult) (*chart, error) {
	return sampleChart(s, "rss", "resident memory of the proxy (direct: the cells)", "RSS (MiB)", func(sm ProcSample) float64 { return sm.RSSMiB })
}
