package main

import (
	"strings"
	"testing"

	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

func TestParseTestEvents(t *testing.T) {
	lines := strings.Join([]string{
		`{"Action":"start","Package":"cellbench/parity"}`,
		`{"Action":"run","Package":"cellbench/parity","Test":"TestA"}`,
		`{"Action":"pass","Package":"cellbench/parity","Test":"TestA/sub"}`,
		`{"Action":"pass","Package":"cellbench/parity","Test":"TestA"}`,
		`{"Action":"fail","Package":"cellbench/parity","Test":"TestB/x"}`,
		`{"Action":"fail","Package":"cellbench/parity","Test":"TestB"}`,
		`{"Action":"skip","Package":"cellbench/parity","Test":"TestC"}`,
		`{"Action":"output","Package":"cellbench/parity","Test":"TestC","Output":"--- SKIP"}`,
		`{"Action":"output","Package":"cellbench/parity","Test":"TestA/sub","Output":"    x_test.go:9: documented divergence: pingora …\n"}`,
		`{"Action":"output","Package":"cellbench/parity","Test":"TestA/sub","Output":"    x_test.go:9: documented divergence: again\n"}`,
		`not json`,
		`{"Action":"fail","Package":"cellbench/parity"}`,
	}, "\n")
	var res report.ParityResult
	n := parseTestEvents(strings.NewReader(lines), &res)
	if n != 5 || res.Pass != 2 || res.Fail != 2 || res.Skip != 1 {
		t.Fatalf("n=%d %+v", n, res)
	}
	if strings.Join(res.Failed, ",") != "TestB,TestB/x" || strings.Join(res.Skipped, ",") != "TestC" || strings.Join(res.Divergent, ",") != "TestA/sub" {
		t.Fatalf("names %v %v %v", res.Failed, res.Skipped, res.Divergent)
	}
}

func TestWrkScriptAndItsLine(t *testing.T) {
	script := wrkScript([]scenario.Target{
		{RoutingKey: "acme", Method: "GET", Path: "/a", Weight: 2},
		{RoutingKey: "visa", Method: "POST", Path: "/b", BodyBytes: 3, Headers: map[string]string{"Content-Type": "text/plain"}, Weight: 1},
	})
	for _, want := range []string{
		`wrk.format("GET", "/a", {["X-Routing-Key"] = "acme"}, nil)`,
		`wrk.format("POST", "/b", {["X-Routing-Key"] = "visa", ["Content-Type"] = "text/plain"}, string.rep("x", 3))`,
		"function done(summary, latency, requests)",
		"ipairs({10, 25, 50, 75, 90, 99})",
		`\"percentiles_us\":[%s]`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if n := strings.Count(script, `"/a"`); n != 2 {
		t.Errorf("weight 2 gives %d entries", n)
	}
	w, err := parseWrkDone("Running 5s test\nCROSSCHECK {\"requests\":1010,\"duration_us\":5000000,\"p50_us\":250,\"mean_us\":310.5,\"errors\":10,\"percentiles_us\":[90,120,250,400,800,2000]}\n")
	if err != nil || w.rps() != 200 || w.P50Us != 250 || w.MeanUs != 310.5 || len(w.PercentilesUs) != len(shapePercentiles) || w.PercentilesUs[2] != 250 {
		t.Fatalf("%+v %v", w, err)
	}
	if _, err := parseWrkDone("no line"); err == nil {
		t.Fatal("missing line accepted")
	}
}
