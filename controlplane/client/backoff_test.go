package client

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{"no spread", 0.5, []time.Duration{200, 400, 800, 1600, 3200, 6400, 10000, 10000}},
		{"lowest spread never goes under min", 0, []time.Duration{200, 320, 640, 1280, 2560, 5120, 8000, 8000}},
		{"highest spread never goes over max", 1, []time.Duration{240, 480, 960, 1920, 3840, 7680, 10000, 10000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(200*time.Millisecond, 10*time.Second)
			b.jitter = func() float64 { return tc.jitter }
			for i, want := range tc.want {
				if got := b.next(); got != want*time.Millisecond {
					t.Fatalf("step %d: got %v, want %v", i, got, want*time.Millisecond)
				}
			}
			b.reset()
			if got := b.next(); got > 240*time.Millisecond {
				t.Fatalf("after reset: got %v, want about 200ms", got)
			}
		})
	}
}
