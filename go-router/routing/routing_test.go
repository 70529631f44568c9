package routing

import (
	"reflect"
	"testing"

	"cellbench/config"
)

const testDoc = `{
  "version": "t1",
  "default_placement": "tier3",
  "routes": {"acme": "tier1", "globex": "tier2", "visa": "visa", "loop": "a"},
  "placements": {
    "tier1": {"kind": "shared", "endpoint": "http://127.0.0.1:9001", "fallback": "tier2"},
    "tier2": {"kind": "shared", "endpoint": "http://127.0.0.1:9002", "fallback": "tier3"},
    "tier3": {"kind": "shared", "endpoint": "http://127.0.0.1:9003"},
    "visa":  {"kind": "dedicated", "endpoint": "http://127.0.0.1:9004", "fallback": "tier3"},
    "a":     {"kind": "shared", "endpoint": "http://127.0.0.1:9005", "fallback": "b"},
    "b":     {"kind": "dedicated", "endpoint": "http://127.0.0.1:9006"}
  }
}`

func compile(t *testing.T) *Table {
	t.Helper()
	cfg, err := config.Parse([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	return Compile(cfg)
}

func names(t *Table, idx []int) []string {
	out := make([]string, len(idx))
	for i, p := range idx {
		out[i] = t.Names[p]
	}
	return out
}

func TestRoute(t *testing.T) {
	tab := compile(t)
	for _, tc := range []struct {
		key, placement, reason string
	}{
		{"acme", "tier1", "shared"},
		{"globex", "tier2", "shared"},
		{"visa", "visa", "dedicated"},
		{"loop", "a", "shared"},
		{"unknown", "tier3", "default"},
		{"ACME", "tier3", "default"},  // keys are case-sensitive
		{"tier1", "tier3", "default"}, // a placement name is not a key
	} {
		p, r := tab.Route(tc.key)
		if tab.Names[p] != tc.placement || r.String() != tc.reason {
			t.Errorf("Route(%q) = %s/%s, want %s/%s", tc.key, tab.Names[p], r, tc.placement, tc.reason)
		}
	}
}

func TestCandidates(t *testing.T) {
	tab := compile(t)
	for _, tc := range []struct {
		primary string
		want    []string
	}{
		{"tier1", []string{"tier1", "tier2", "tier3"}}, // chain already ends at the default
		{"tier2", []string{"tier2", "tier3"}},
		{"tier3", []string{"tier3"}}, // the default is visited once
		{"visa", []string{"visa", "tier3"}},
		{"a", []string{"a", "b", "tier3"}}, // chain, then the default
		{"b", []string{"b", "tier3"}},      // no fallback: default only
	} {
		idx := -1
		for i, n := range tab.Names {
			if n == tc.primary {
				idx = i
			}
		}
		if got := names(tab, tab.Candidates(idx)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Candidates(%s) = %v, want %v", tc.primary, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name       string
		avail      []Availability // per candidate position
		wantPos    int            // -1: none
		wantReason FailoverReason
		wantAsked  int
	}{
		{"primary available", []Availability{Available, Available}, 0, NoFailover, 1},
		{"primary unhealthy", []Availability{Unhealthy, Available}, 1, FailoverUnhealthy, 2},
		{"primary circuit open", []Availability{CircuitOpen, Available}, 1, FailoverCircuitOpen, 2},
		{"reason is the primary's, not the fallback's", []Availability{Unhealthy, CircuitOpen, Available}, 2, FailoverUnhealthy, 3},
		{"none available", []Availability{CircuitOpen, Unhealthy}, -1, FailoverCircuitOpen, 2},
		{"single candidate down", []Availability{Unhealthy}, -1, FailoverUnhealthy, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cands := make([]int, len(tc.avail))
			for i := range cands {
				cands[i] = 10 + i
			}
			asked := 0
			serving, reason, ok := Select(cands, func(p int) Availability {
				if p != cands[asked] {
					t.Fatalf("asked about %d out of order", p)
				}
				asked++
				return tc.avail[p-10]
			})
			if tc.wantPos < 0 {
				if ok {
					t.Fatalf("got %d, want none", serving)
				}
			} else if !ok || serving != cands[tc.wantPos] {
				t.Fatalf("serving = %d ok=%v, want %d", serving, ok, cands[tc.wantPos])
			}
			if reason != tc.wantReason || asked != tc.wantAsked {
				t.Fatalf("reason %q asked %d, want %q asked %d", reason, asked, tc.wantReason, tc.wantAsked)
			}
		})
	}
}

func TestMayRetry(t *testing.T) {
	for _, tc := range []struct {
		outcome       Outcome
		method        string
		hasBody, used bool
		want          bool
	}{
		{OutcomeConnectFailure, "GET", false, false, true},
		{OutcomeConnectFailure, "POST", true, false, true}, // nothing was sent
		{OutcomeConnectFailure, "POST", true, true, false}, // never replay a consumed body
		{OutcomeRetryableStatus, "GET", false, false, true},
		{OutcomeRetryableStatus, "HEAD", false, false, true},
		{OutcomeRetryableStatus, "OPTIONS", false, false, true},
		{OutcomeRetryableStatus, "PUT", false, false, true},
		{OutcomeRetryableStatus, "DELETE", false, false, true},
		{OutcomeRetryableStatus, "POST", false, false, false},
		{OutcomeRetryableStatus, "PATCH", false, false, false},
		{OutcomeRetryableStatus, "PUT", true, true, false}, // idempotent but has a body
		{OutcomeTimeout, "GET", false, false, true},
		{OutcomeTimeout, "POST", false, false, false},
		{OutcomeBroken, "GET", false, false, true},
		{OutcomeBroken, "POST", true, true, false},
		{OutcomeResponse, "GET", false, false, false}, // any other status passes through
	} {
		if got := MayRetry(tc.outcome, tc.method, tc.hasBody, tc.used); got != tc.want {
			t.Errorf("MayRetry(%d, %s, body=%v, used=%v) = %v, want %v", tc.outcome, tc.method, tc.hasBody, tc.used, got, tc.want)
		}
	}
}

func TestOutcomeOfStatus(t *testing.T) {
	for status, want := range map[int]Outcome{200: OutcomeResponse, 404: OutcomeResponse, 500: OutcomeResponse,
		502: OutcomeRetryableStatus, 503: OutcomeRetryableStatus, 504: OutcomeRetryableStatus, 501: OutcomeResponse} {
		if got := OutcomeOfStatus(status); got != want {
			t.Errorf("OutcomeOfStatus(%d) = %d, want %d", status, got, want)
		}
	}
}

func TestIsBreakerFailure(t *testing.T) {
	for _, tc := range []struct {
		outcome Outcome
		status  int
		want    bool
	}{
		{OutcomeResponse, 200, false},
		{OutcomeResponse, 404, false},
		{OutcomeResponse, 429, false},
		{OutcomeResponse, 500, true},
		{OutcomeResponse, 501, true},
		{OutcomeRetryableStatus, 503, true},
		{OutcomeConnectFailure, 0, true},
		{OutcomeTimeout, 0, true},
		{OutcomeBroken, 0, true},
	} {
		if got := IsBreakerFailure(tc.outcome, tc.status); got != tc.want {
			t.Errorf("IsBreakerFailure(%d, %d) = %v, want %v", tc.outcome, tc.status, got, tc.want)
		}
	}
}
