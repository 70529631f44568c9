package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellbench/config"
	"cellbench/harness/report"
	"cellbench/harness/report/schemacheck"
	"cellbench/internal/testkit"
)

// repoRootForTest is the repository root (the tests run in harness/).
func repoRootForTest(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// compareAt runs `harness compare ARGS --out DIR` from the repository root
// and returns DIR's results.
func compareAt(t *testing.T, ctx context.Context, root string, args ...string) (*report.Results, string) {
	t.Helper()
	out := t.TempDir()
	t.Chdir(root)
	cmd := compareCmd()
	cmd.SetArgs(append(args, "--rounds", "1", "--out", out))
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := report.ReadJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}

// buildBinaries builds the named commands of the repository into a
// temporary directory and returns it.
func buildBinaries(t *testing.T, names ...string) string {
	t.Helper()
	bin := t.TempDir()
	if err := testkit.GoBuild(bin, false, names...); err != nil {
		t.Fatal(err)
	}
	return bin
}

// handStartedRouter starts mock cells and a Go router the way an operator
// would on another host (the harness does not know their processes), with
// the demo config pointed at the cells, and returns the router's proxy and
// admin addresses and the cells' chaos API.
func handStartedRouter(t *testing.T, root, bin string, args ...string) (proxy, admin, cellsAdmin string) {
	t.Helper()
	dir := t.TempDir()
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	mocks, ready, err := startMocks(filepath.Join(bin, "mockbackends"), online.String(), dir, []string{"tier1", "tier2", "tier3", "visa"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mocks.Stop(3 * time.Second) })
	doc, err := os.ReadFile(filepath.Join(root, "config/examples/demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range cfg.Placements {
		p.Endpoint = "http://" + ready.Cells[name]
	}
	cfgPath := filepath.Join(dir, "router.json")
	if err := writeConfig(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		// A control plane started first: it takes the same config.
		if a == "--control-plane" {
			cp := exec.Command(filepath.Join(bin, "controlplane"), "--config", cfgPath, "--listen", args[i+1])
			cp.Stderr = os.Stderr
			if err := cp.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cp.Process.Kill(); cp.Wait() })
			args[i+1] = "ws://" + args[i+1] + "/connect"
		}
	}
	if proxy, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if admin, err = freePort(); err != nil {
		t.Fatal(err)
	}
	router := exec.Command(filepath.Join(bin, "go-router"), append([]string{"--config", cfgPath, "--listen", proxy, "--admin", admin, "--access-log", "off"}, args...)...)
	router.Stderr = os.Stderr
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { router.Process.Kill(); router.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitDial(ctx, admin, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return proxy, admin, ready.Admin
}

// TestCompareRemoteTarget runs `harness compare --target go=URL,admin=URL`
// against a Go router started by hand: the report has the router's CPU
// from its /metrics, and a scenario that rewrites the router's config file
// is refused with the scenario and what it needs named.
func TestCompareRemoteTarget(t *testing.T) {
	root := repoRootForTest(t)
	bin := buildBinaries(t, "go-router", "mockbackends")
	proxy, admin, cellsAdmin := handStartedRouter(t, root, bin)

	scs := t.TempDir()
	writeTestFile(t, filepath.Join(scs, "remote_steady.json"), `{
	  "name": "remote_steady", "question": "does a remote router run end to end?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [
	    {"routing_key": "acme", "method": "GET", "path": "/a", "weight": 1},
	    {"routing_key": "nobody", "method": "GET", "path": "/c", "weight": 1}
	  ],
	  "rate": 300, "duration_ms": 1500, "conns": 4,
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`)
	writeTestFile(t, filepath.Join(scs, "remote_rewrite.json"), `{
	  "name": "remote_rewrite", "question": "is a config rewrite refused remotely?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [{"routing_key": "acme", "method": "GET", "path": "/a", "weight": 1}],
	  "rate": 100, "duration_ms": 1000,
	  "timeline": [{"at_ms": 300, "action": "config_write", "version": "v2"},
	               {"at_ms": 500, "action": "chaos", "cell": "tier1", "chaos": {"status": 500}}],
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`)
	writeTestFile(t, filepath.Join(scs, "remote_chaos.json"), `{
	  "name": "remote_chaos", "question": "do chaos actions reach remote cells?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [{"routing_key": "visa", "method": "GET", "path": "/v", "weight": 1}],
	  "rate": 100, "duration_ms": 1000,
	  "timeline": [{"at_ms": 200, "action": "chaos", "cell": "visa", "chaos": {"status": 503}},
	               {"at_ms": 600, "action": "chaos_reset", "cell": "visa"}],
	  "slo": {"min_success": 0.5, "max_p99_ms": 1000}
	}`)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, out := compareAt(t, ctx, root, "--target", "go=http://"+proxy+",admin=http://"+admin, "--cells-admin", "http://"+cellsAdmin,
		"--scenarios", scs, "--router-cores", "1")
	byName := map[string]report.ScenarioResult{}
	for _, s := range res.Scenarios {
		byName[s.Name] = s
	}
	steady := byName["remote_steady"]
	if len(steady.Runs) != 1 {
		t.Fatalf("remote_steady runs: %+v", steady.Runs)
	}
	run := steady.Runs[0]
	if run.Target != report.TargetGo || run.Error != "" || run.NotApplicable != "" {
		t.Fatalf("run %s: error %q, not applicable %q", run.Target, run.Error, run.NotApplicable)
	}
	if s := run.Summary; s.Requests != 450 || s.SuccessRate != 1 || run.Misrouted != 0 || s.Served["tier1"] == 0 || s.Served["tier3"] == 0 {
		t.Fatalf("summary %+v, misrouted %d", s, run.Misrouted)
	}
	// 450 proxied requests cost the router well over one 10 ms tick.
	if run.Router == nil || run.Router.CPUSeconds <= 0 || run.Router.MaxRSSMiB <= 0 || run.Router.Utilization <= 0 {
		t.Fatalf("router CPU and memory from /metrics: %+v", run.Router)
	}
	if len(run.Samples) == 0 || run.Samples[0].FDs == 0 {
		t.Fatalf("samples from /metrics: %+v", run.Samples)
	}
	rewrite := byName["remote_rewrite"]
	if len(rewrite.Runs) != 1 || !strings.Contains(rewrite.Runs[0].NotApplicable, "remote_rewrite") ||
		!strings.Contains(rewrite.Runs[0].NotApplicable, "config_write") || strings.Contains(rewrite.Runs[0].NotApplicable, "chaos") {
		t.Fatalf("remote_rewrite: %+v", rewrite.Runs)
	}
	// Through --cells-admin: visa answered 503 after the first action,
	// which shows as failovers to tier3 or as 503s. (The remote router's
	// breaker state outlives the scenario: the other scenarios use other
	// placements.)
	chaos := byName["remote_chaos"].Runs[0]
	if len(chaos.Actions) != 2 || chaos.Actions[0].Error != "" || chaos.Actions[1].Error != "" {
		t.Fatalf("remote chaos actions: %+v", chaos.Actions)
	}
	if chaos.Summary.Successes == chaos.Summary.Requests && len(chaos.Summary.Failover) == 0 {
		t.Fatalf("the chaos did not reach the cell: %+v", chaos.Summary)
	}
	doc, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := schemacheck.Validate(filepath.Join(root, "docs/results.schema.json"), doc); err != nil {
		t.Fatalf("remote results.json against docs/results.schema.json: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "remote_steady") || !strings.Contains(string(md), "proxy CPU µs/req") {
		t.Fatalf("report.md lacks the run or its proxy CPU:\n%.2000s", md)
	}
}

// A config rewrite against a remote router that follows a control plane
// goes through the control plane (--control-plane), and the new version
// reaches the clients.
func TestCompareRemoteConfigThroughControlPlane(t *testing.T) {
	root := repoRootForTest(t)
	bin := buildBinaries(t, "go-router", "mockbackends", "controlplane")
	cp, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	proxy, admin, _ := handStartedRouter(t, root, bin, "--control-plane", cp)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The router follows the control plane once it has connected.
	for {
		var st struct{ Source string }
		if getJSON(ctx, "http://"+admin+"/debug/config", &st) == nil && st.Source == "control_plane" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the router never took its config from the control plane")
		}
		time.Sleep(100 * time.Millisecond)
	}
	scs := t.TempDir()
	writeTestFile(t, filepath.Join(scs, "remote_reload.json"), `{
	  "name": "remote_reload", "question": "does a rewrite reach a remote router?",
	  "config": "config/examples/demo.json", "access_log": "off",
	  "targets": [{"routing_key": "acme", "method": "GET", "path": "/a", "weight": 1}],
	  "rate": 200, "duration_ms": 1500,
	  "timeline": [{"at_ms": 400, "action": "config_write", "version": "remote-2"}],
	  "slo": {"min_success": 0.99, "max_p99_ms": 1000}
	}`)
	res, _ := compareAt(t, ctx, root, "--target", "go=http://"+proxy+",admin=http://"+admin, "--control-plane", "http://"+cp, "--scenarios", scs)
	run := res.Scenarios[0].Runs[0]
	if run.Error != "" || run.NotApplicable != "" || len(run.Actions) != 1 || run.Actions[0].Error != "" {
		t.Fatalf("run: error %q, not applicable %q, actions %+v", run.Error, run.NotApplicable, run.Actions)
	}
	if v := run.Actions[0].Visibility; v == nil || v.FirstSeenMs < 0 || run.Summary.Successes != run.Summary.Requests {
		t.Fatalf("version remote-2 not seen: %+v, %+v", v, run.Summary)
	}
}

func TestParseRemoteTarget(t *testing.T) {
	r, err := parseRemoteTarget("pingora=http://10.0.0.5:8080,admin=http://10.0.0.5:9090")
	if err != nil || r.name != "pingora" || r.proxy != "10.0.0.5:8080" || r.admin != "http://10.0.0.5:9090" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"go", "nginx=http://h:1", "go=https://h:1", "go=http://h", "go=http://h:1/x", "go=http://h:1,metrics=http://h:2", "go=http://h:1,admin=h:2"} {
		if _, err := parseRemoteTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func writeTestFile(t *testing.T, path, doc string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
