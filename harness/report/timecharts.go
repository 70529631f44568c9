package report

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// throughputTimeChart: 2xx answers per second of each target's first
// round, with the timeline's actions marked.
func throughputTimeChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	for _, r := range firstRounds(s) {
		var xys plotter.XYs
		for _, sec := range r.Timeline {
			xys = append(xys, plotter.XY{X: float64(sec.Second), Y: float64(sec.Successes)})
		}
		ss = append(ss, series{target: r.Target, xys: xys})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": 2xx answers per second (round 1)", timeAxis(s), "2xx per second")
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	_, hi := yRange(ss)
	p.Y.Min = 0
	if err := markActions(p, s, 0, hi); err != nil {
		return nil, err
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	return &chart{p, s.Name + "-throughput-time.png"}, nil
}

// versionRanks orders the config versions a run applied: its bootstrap
// version 0, then every accepted version of its timeline in order. A
// rejected document gets no rank (it must never be served).
func versionRanks(r *Run) (rank map[string]int, names []string) {
	rank = map[string]int{}
	add := func(v string) {
		if _, ok := rank[v]; v != "" && !ok {
			rank[v] = len(names)
			names = append(names, v)
		}
	}
	add(r.BootstrapVersion)
	for _, a := range r.Actions {
		if !a.Invalid {
			add(a.Version)
		}
	}
	return rank, names
}

// versionTimeChart: per second of each router's first round, the newest
// (solid) and the oldest (dashed) config version its answers carried; the
// two part where a second served more than one version.
func versionTimeChart(s *ScenarioResult) (*chart, error) {
	var ss []series
	var names []string
	for _, r := range firstRounds(s) {
		if r.Target == TargetDirect {
			continue
		}
		rank, ns := versionRanks(r)
		if len(ns) > len(names) {
			names = ns
		}
		var newest, oldest plotter.XYs
		for _, sec := range r.Timeline {
			lo, hi := math.Inf(1), math.Inf(-1)
			for v := range sec.Versions {
				if k, ok := rank[v]; ok {
					lo, hi = math.Min(lo, float64(k)), math.Max(hi, float64(k))
				}
			}
			if !math.IsInf(hi, -1) {
				newest = append(newest, plotter.XY{X: float64(sec.Second), Y: hi})
				oldest = append(oldest, plotter.XY{X: float64(sec.Second), Y: lo})
			}
		}
		ss = append(ss, series{target: r.Target, xys: newest}, series{target: r.Target, xys: oldest, round: 2, dashed: true})
	}
	if empty(ss) {
		return nil, nil
	}
	p := newPlot(s.Name+": config version answers carried, per second (round 1)", timeAxis(s), "version (solid newest, dashed oldest)")
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = versionTicks(names)
	p.Y.Min, p.Y.Max = -0.5, float64(len(names))-0.5
	if err := markActions(p, s, 0, float64(len(names)-1)); err != nil {
		return nil, err
	}
	if err := addSeries(p, ss); err != nil {
		return nil, err
	}
	return &chart{p, s.Name + "-versions-time.png"}, nil
}

// versionTicks label each rank with its version name, thinned to at most
// a dozen labels.
type versionTicks []string

func (v versionTicks) Ticks(_, _ float64) []plot.Tick {
	step := max(1, (len(v)+11)/12)
	ticks := make([]plot.Tick, len(v))
	for i, name := range v {
		ticks[i] = plot.Tick{Value: float64(i)}
		if i%step == 0 {
			ticks[i].Label = name
		}
	}
	return ticks
}
