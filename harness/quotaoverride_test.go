package main

import "testing"

func TestParseQuotaOverrides(t *testing.T) {
	got, err := parseQuotaOverrides("pingora=0.1, go=0.25", 1)
	if err != nil || len(got) != 2 || got["pingora"] != 0.1 || got["go"] != 0.25 {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := parseQuotaOverrides("", 1); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	// Below the kernel's 1 ms per 10 ms period, above the CPU list, not a
	// proxy, not a number.
	for _, bad := range []string{"pingora=0.05", "pingora=1.5", "direct=0.2", "nobody=0.2", "pingora", "pingora=x"} {
		if _, err := parseQuotaOverrides(bad, 1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
