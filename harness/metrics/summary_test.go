package metrics

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	recs := []Record{
		rec(0, 1, 200), rec(100, 2, 200), rec(200, 3, 503), rec(300, 4, 200),
		{Start: 400 * time.Millisecond, Latency: time.Second, Error: "connection refused"},
	}
	recs[0].Served, recs[1].Served, recs[3].Served = "tier1", "tier1", "tier2"
	recs[3].Failover = "unhealthy"
	s := Summarize(recs, 2*time.Second)
	if s.Requests != 5 || s.Successes != 3 || s.Errors != 1 {
		t.Fatalf("counts %+v", s)
	}
	if s.SuccessRate != 0.6 || s.OfferedRate != 2.5 || s.Throughput != 1.5 {
		t.Fatalf("rates %v %v %v", s.SuccessRate, s.OfferedRate, s.Throughput)
	}
	// The request without a response is not a latency sample.
	if s.Latency.Count != 4 || s.Latency.Max != 4 || s.Latency.P50 != 2 || s.Latency.Mean != 2.5 {
		t.Fatalf("latency %+v", s.Latency)
	}
	if s.Codes["200"] != 3 || s.Codes["503"] != 1 || s.Codes["0"] != 1 {
		t.Fatalf("codes %v", s.Codes)
	}
	if s.Served["tier1"] != 2 || s.Failover["unhealthy"] != 1 {
		t.Fatalf("served %v failover %v", s.Served, s.Failover)
	}
	if len(s.TopErrors) != 1 || s.TopErrors[0] != (Count{"connection refused", 1}) {
		t.Fatalf("errors %v", s.TopErrors)
	}
}

func TestLateSendsMakeARunInvalid(t *testing.T) {
	var recs []Record
	for i := 0; i < 1000; i++ {
		r := Record{Start: time.Duration(i) * time.Millisecond, Latency: time.Millisecond, Code: 200}
		if i < 10 {
			r.Lag = 2 * time.Millisecond // 1 %: still valid
		}
		if i%100 == 0 {
			r.NoFreeConn = true
		}
		recs = append(recs, r)
	}
	s := Summarize(recs, time.Second)
	if s.LateSends != 10 || s.WaitedForConnection != 10 || !s.GeneratorKeptUp() {
		t.Fatalf("%+v", s)
	}
	recs[10].Lag = 1001 * time.Microsecond
	if s := Summarize(recs, time.Second); s.LateSends != 11 || s.GeneratorKeptUp() {
		t.Fatalf("1.1 %% late sends kept up: %+v", s)
	}
}

func TestLongestOutage(t *testing.T) {
	recs := []Record{rec(0, 1, 200), rec(100, 1, 503), rec(2600, 1, 0), rec(2700, 1, 200), rec(2800, 1, 200)}
	if got := LongestOutage(recs, 3*time.Second); got != 2700*time.Millisecond {
		t.Fatalf("outage %v, want 2.7s (0 → 2700 ms)", got)
	}
	if got := LongestOutage(nil, time.Second); got != time.Second {
		t.Fatalf("no request answered: %v", got)
	}
}
