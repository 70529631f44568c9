package report

import (
	"fmt"
	"strings"

	"cellbench/harness/metrics"
)

// Diff compares two runs of the harness figure by figure: every scenario,
// target and headline figure both have, with the spread of each over its
// rounds, and whether the difference is beyond noise by the verdicts' own
// rule (Separate: two valid rounds a side at least, min–max ranges that do
// not overlap; a capacity figure also needs both sides router-bound).
type Diff struct {
	A     string     `json:"a"`
	B     string     `json:"b"`
	Lines []DiffLine `json:"lines"`
	// Missing names what only one side has (a scenario, or a target in a
	// scenario).
	Missing []string `json:"missing,omitempty"`
}

// DiffLine is one figure of one target in one scenario, A against B.
type DiffLine struct {
	Scenario string         `json:"scenario"`
	Target   string         `json:"target"`
	Figure   string         `json:"figure"`
	Unit     string         `json:"unit"`
	A        metrics.Spread `json:"a"`
	B        metrics.Spread `json:"b"`
	// Ratio is B's median over A's.
	Ratio float64 `json:"ratio"`
	// Beyond: the difference is beyond noise; then Better says whether B
	// is the better side (lower latency or CPU, higher capacity).
	Beyond bool `json:"beyond_noise"`
	Better bool `json:"b_better,omitempty"`
	// Why is the rule's reading: "beyond noise", "within noise (ranges
	// overlap)", "too few rounds", or the bound that rules a capacity out.
	Why string `json:"why"`
}

// DiffResults compares a and b. It recomputes both sides' headlines with
// today's rules first, as `harness report` does.
func DiffResults(a, b *Results) Diff {
	d := Diff{}
	byName := map[string]*ScenarioResult{}
	for i := range b.Scenarios {
		byName[b.Scenarios[i].Name] = &b.Scenarios[i]
	}
	seen := map[string]bool{}
	for i := range a.Scenarios {
		sa := &a.Scenarios[i]
		sb := byName[sa.Name]
		seen[sa.Name] = true
		if sb == nil {
			d.Missing = append(d.Missing, "scenario "+sa.Name+" only in A")
			continue
		}
		Aggregate(sa, a.Budget)
		Aggregate(sb, b.Budget)
		for _, t := range AllTargets {
			ha, hb := sa.HeadlineOf(t), sb.HeadlineOf(t)
			switch {
			case ha == nil && hb == nil:
				continue
			case hb == nil:
				d.Missing = append(d.Missing, fmt.Sprintf("%s %s: valid rounds only in A", sa.Name, t))
				continue
			case ha == nil:
				d.Missing = append(d.Missing, fmt.Sprintf("%s %s: valid rounds only in B", sa.Name, t))
				continue
			}
			for _, f := range Figures {
				fa, fb := f.Get(ha), f.Get(hb)
				if fa.N == 0 || fb.N == 0 {
					continue
				}
				d.Lines = append(d.Lines, diffLine(sa.Name, t, f, ha, hb))
			}
		}
	}
	for _, s := range b.Scenarios {
		if !seen[s.Name] {
			d.Missing = append(d.Missing, "scenario "+s.Name+" only in B")
		}
	}
	return d
}

func diffLine(scenario, target string, f Figure, ha, hb *Headline) DiffLine {
	a, b := f.Get(ha), f.Get(hb)
	l := DiffLine{Scenario: scenario, Target: target, Figure: f.Label, Unit: f.Unit, A: a, B: b}
	if a.Median > 0 {
		l.Ratio = b.Median / a.Median
	}
	if f.Capacity {
		for i, h := range []*Headline{ha, hb} {
			if h.Bound != BoundRouter {
				l.Why = fmt.Sprintf("no verdict: %s bound by %s in %s", target, orDash(h.Bound), []string{"A", "B"}[i])
				return l
			}
		}
	}
	switch Separate(a, b) {
	case TooFewRounds:
		l.Why = fmt.Sprintf("too few rounds (%d and %d; a verdict needs %d a side)", a.N, b.N, minRounds)
	case Overlapping:
		l.Why = withinNoise
	case Separated:
		l.Beyond, l.Why = true, "beyond noise"
		l.Better = (b.Median > a.Median) == f.HigherIsBetter
	}
	return l
}

// Beyond are the lines whose difference is beyond noise.
func (d Diff) Beyond() []DiffLine {
	var out []DiffLine
	for _, l := range d.Lines {
		if l.Beyond {
			out = append(out, l)
		}
	}
	return out
}

// Text is the diff for a terminal: every line with both spreads, then
// what is beyond noise, or "no difference beyond noise".
func (d Diff) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "A: %s\nB: %s\n\n", d.A, d.B)
	fmt.Fprintf(&b, "%-20s %-14s %-22s %-28s %-28s %-7s %s\n", "scenario", "target", "figure", "A median [min–max]", "B median [min–max]", "B/A", "")
	for _, l := range d.Lines {
		fig := Figure{Digits: 3}
		if f := FigureByLabel(l.Figure); f != nil {
			fig = *f
		}
		fmt.Fprintf(&b, "%-20s %-14s %-22s %-28s %-28s %-7s %s\n", l.Scenario, l.Target, l.Figure+" ("+l.Unit+")",
			FormatSpread(l.A, fig.Digits), FormatSpread(l.B, fig.Digits), fmt.Sprintf("%.2f×", l.Ratio), l.Why)
	}
	for _, m := range d.Missing {
		fmt.Fprintf(&b, "not compared: %s\n", m)
	}
	b.WriteString("\n")
	beyond := d.Beyond()
	if len(beyond) == 0 {
		b.WriteString("no difference beyond noise")
		undecided := 0
		for _, l := range d.Lines {
			if l.Why != withinNoise {
				undecided++
			}
		}
		if undecided > 0 {
			fmt.Fprintf(&b, " (%d of the %d figures could not be judged: too few rounds, or a capacity not bound by the router)", undecided, len(d.Lines))
		}
		b.WriteString("\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%d difference(s) beyond noise:\n", len(beyond))
	for _, l := range beyond {
		digits := 3
		if f := FigureByLabel(l.Figure); f != nil {
			digits = f.Digits
		}
		word := "worse"
		if l.Better {
			word = "better"
		}
		fmt.Fprintf(&b, "- %s %s %s: B is %s, %.2f× A's (A %s, B %s %s)\n", l.Scenario, l.Target, l.Figure, word, l.Ratio,
			FormatSpread(l.A, digits), FormatSpread(l.B, digits), l.Unit)
	}
	return b.String()
}

// FigureByLabel returns the figure with label, or nil.
func FigureByLabel(label string) *Figure {
	for i := range Figures {
		if Figures[i].Label == label {
			return &Figures[i]
		}
	}
	return nil
}

// withinNoise is the reading of a difference the rounds do not separate.
const withinNoise = "within noise (ranges overlap)"
