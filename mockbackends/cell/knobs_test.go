package cell

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKnobs(t *testing.T) {
	tests := []struct {
		query   string
		want    Knobs
		errKnob string // "" = valid
	}{
		{query: "", want: Knobs{}},
		{query: "other=1&x", want: Knobs{}},
		{query: "status=503", want: Knobs{Status: 503}},
		{query: "status=102", want: Knobs{Status: 102}},
		{query: "status=599", want: Knobs{Status: 599}},
		{query: "status=100", errKnob: "status"},
		{query: "status=101", errKnob: "status"},
		{query: "status=600", errKnob: "status"},
		{query: "status=abc", errKnob: "status"},
		{query: "status=", errKnob: "status"},
		{query: "status=200&status=500", errKnob: "status"},
		{query: "delay_ms=0", want: Knobs{}},
		{query: "delay_ms=250", want: Knobs{DelayMs: 250}},
		{query: "delay_ms=-1", errKnob: "delay_ms"},
		{query: "delay_ms=1.5", errKnob: "delay_ms"},
		{query: "delay_ms=3600001", errKnob: "delay_ms"},
		{query: "size=0", want: Knobs{HasSize: true}},
		{query: "size=1048576", want: Knobs{Size: 1 << 20, HasSize: true}},
		{query: "size=-5", errKnob: "size"},
		{query: "size=99999999999999999999", errKnob: "size"},
		{query: "chunks=4", want: Knobs{Chunks: 4}},
		{query: "chunks=0", errKnob: "chunks"},
		{query: "chunks=3&chunk_delay_ms=20", want: Knobs{Chunks: 3, ChunkDelayMs: 20}},
		{query: "chunk_delay_ms=20", errKnob: "chunk_delay_ms"},
		{query: "chunks=3&chunk_delay_ms=x", errKnob: "chunk_delay_ms"},
		{query: "chunks=3&size=10", want: Knobs{Chunks: 3, Size: 10, HasSize: true}},
		{query: "chunks=3&size=3", want: Knobs{Chunks: 3, Size: 3, HasSize: true}},
		{query: "chunks=3&size=2", errKnob: "size"},
		{query: "close=1", want: Knobs{Close: true}},
		{query: "close=0", want: Knobs{}},
		{query: "close=yes", errKnob: "close"},
		{query: "status=404&delay_ms=5&size=7", want: Knobs{Status: 404, DelayMs: 5, Size: 7, HasSize: true}},
		// Other parameters may be anything, even malformed.
		{query: "a=%zz&%zz=1&x;y=2&status=200", want: Knobs{Status: 200}},
		// Knob names and values are URL-decoded.
		{query: "st%61tus=503&delay_ms=%31%30", want: Knobs{Status: 503, DelayMs: 10}},
		{query: "status=%zz", errKnob: "status"},
		{query: "status=200&st%61tus=500", errKnob: "status"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := ParseKnobs(tt.query)
			if tt.errKnob != "" {
				var ke *KnobError
				if !errors.As(err, &ke) || ke.Knob != tt.errKnob {
					t.Fatalf("ParseKnobs(%q) error = %v, want a KnobError on %q", tt.query, err, tt.errKnob)
				}
				if !strings.HasPrefix(err.Error(), tt.errKnob+": ") || ke.Message == "" {
					t.Fatalf("error %q does not name the knob and a reason", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKnobs(%q) = %v", tt.query, err)
			}
			if got != tt.want {
				t.Fatalf("ParseKnobs(%q) = %+v, want %+v", tt.query, got, tt.want)
			}
		})
	}
}
