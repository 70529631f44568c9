package cell

import (
	"strings"
	"testing"
)

func TestParseChaosPatch(t *testing.T) {
	base := Chaos{Health: HealthOK, Status: 502, ErrorRate: 0.25, DelayMs: 40}
	tests := []struct {
		body     string
		want     Chaos // base with the patch applied
		wantDown *bool
		errHas   string // "" = valid
	}{
		{body: `{}`, want: base},
		{body: ` { } `, want: base},
		{body: `{"health":"fail"}`, want: Chaos{Health: HealthFail, Status: 502, ErrorRate: 0.25, DelayMs: 40}},
		{body: `{"status":503,"delay_ms":0}`, want: Chaos{Health: HealthOK, Status: 503, ErrorRate: 0.25}},
		{body: `{"status":0}`, want: Chaos{Health: HealthOK, ErrorRate: 0.25, DelayMs: 40}},
		{body: `{"error_rate":1}`, want: Chaos{Health: HealthOK, Status: 502, ErrorRate: 1, DelayMs: 40}},
		{body: `{"error_rate":0}`, want: Chaos{Health: HealthOK, Status: 502, DelayMs: 40}},
		{body: `{"down":true}`, want: base, wantDown: ptr(true)},
		{body: `{"down":false,"health":"ok"}`, want: base, wantDown: ptr(false)},
		{body: ``, errHas: "JSON object"},
		{body: `[]`, errHas: "JSON object"},
		{body: `null`, errHas: "JSON object"},
		{body: `{"status":500`, errHas: "not valid JSON"},
		{body: `{"status":500} {}`, errHas: "after the JSON object"},
		{body: `{"status":500,"status":502}`, errHas: "twice"},
		{body: `{"Status":500}`, errHas: `unknown field "Status"`},
		{body: `{"latency_ms":5}`, errHas: "unknown field"},
		{body: `{"health":"down"}`, errHas: "health"},
		{body: `{"health":true}`, errHas: "health: must be a string"},
		{body: `{"health":null}`, errHas: "null"},
		{body: `{"status":"500"}`, errHas: "status: must be an integer"},
		{body: `{"status":500.5}`, errHas: "status: must be an integer"},
		{body: `{"status":100}`, errHas: "status"},
		{body: `{"status":101}`, errHas: "Upgrade"},
		{body: `{"status":600}`, errHas: "status"},
		{body: `{"status":-1}`, errHas: "status"},
		{body: `{"error_rate":1.01}`, errHas: "error_rate"},
		{body: `{"error_rate":-0.1}`, errHas: "error_rate"},
		{body: `{"error_rate":"0.5"}`, errHas: "error_rate: must be a number"},
		{body: `{"delay_ms":-1}`, errHas: "delay_ms"},
		{body: `{"delay_ms":1.5}`, errHas: "delay_ms: must be an integer"},
		{body: `{"delay_ms":3600001}`, errHas: "delay_ms"},
		{body: `{"down":"true"}`, errHas: "down: must be true or false"},
		{body: `{"down":1}`, errHas: "down"},
		// A valid field next to an invalid one: the whole patch is refused.
		{body: `{"health":"fail","status":99}`, errHas: "status"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			p, err := ParseChaosPatch([]byte(tt.body))
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("ParseChaosPatch(%s) error = %v, want one containing %q", tt.body, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChaosPatch(%s) = %v", tt.body, err)
			}
			if got := p.Apply(base); got != tt.want {
				t.Fatalf("applied = %+v, want %+v", got, tt.want)
			}
			if (p.Down == nil) != (tt.wantDown == nil) || (p.Down != nil && *p.Down != *tt.wantDown) {
				t.Fatalf("Down = %v, want %v", p.Down, tt.wantDown)
			}
		})
	}
}

func TestChooseStatus(t *testing.T) {
	roll := func(v float64) func() float64 { return func() float64 { return v } }
	tests := []struct {
		name  string
		chaos Chaos
		knob  int
		roll  float64
		want  int
	}{
		{"normal", NormalChaos, 0, 0, 200},
		{"knob", NormalChaos, 404, 0, 404},
		{"chaos status beats knob", Chaos{Status: 503}, 404, 0, 503},
		{"error rate hit", Chaos{ErrorRate: 0.3}, 404, 0.29, 500},
		{"error rate miss", Chaos{ErrorRate: 0.3}, 404, 0.3, 404},
		{"error rate 1 always hits", Chaos{ErrorRate: 1}, 0, 0.999999, 500},
		{"error rate hit beats chaos status", Chaos{ErrorRate: 0.5, Status: 503}, 0, 0.1, 500},
		{"error rate miss falls to chaos status", Chaos{ErrorRate: 0.5, Status: 503}, 0, 0.9, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chooseStatus(&tt.chaos, &Knobs{Status: tt.knob}, roll(tt.roll)); got != tt.want {
				t.Fatalf("chooseStatus = %d, want %d", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
