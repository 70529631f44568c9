// Command latency measures the latency a proxy adds on loopback: a
// closed-loop client with one keep-alive connection sends the same GET to a
// mock cell directly, through go-router (every feature on, access log to a
// file) and through nginx (one worker, keep-alive upstream, buffered access
// log), in interleaved rounds so that drift in machine load hits all three
// alike. Each process is pinned with taskset: the cell and this client on
// one core, the proxy under test on the other.
//
// Machine noise moves a single run's ratio by ±0.2 on a shared VM, so the
// report gives, beside the ratio of the pooled percentiles, the spread of
// the ratio over the rounds. --router takes a comma-separated list, so that
// two builds can be compared in the same rounds.
//
//	go run ./go-router/bench/latency --router bin/go-router --mock bin/mockbackends
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	router, mock, nginx string
	bare                string
	requests, rounds    int
	gap                 time.Duration
	warmup              int
	clientCPU, proxyCPU string
	keep                bool
	workers             int
	plain               bool
}

func main() {
	var o options
	flag.StringVar(&o.router, "router", "bin/go-router", "go-router binaries, comma-separated (also a pingora-router binary)")
	flag.StringVar(&o.mock, "mock", "bin/mockbackends", "mockbackends binary")
	flag.StringVar(&o.nginx, "nginx", "/usr/sbin/nginx", "nginx binary (empty: skip nginx)")
	flag.StringVar(&o.bare, "bare", "", "bareproxy binary, a plain httputil.ReverseProxy (empty: skip)")
	flag.IntVar(&o.requests, "requests", 1000, "requests per target per round")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds")
	flag.DurationVar(&o.gap, "gap", 0, "pause between requests (0: back to back); with a gap every process goes idle between requests, as at low request rates")
	flag.IntVar(&o.warmup, "warmup", 300, "unmeasured requests per target before the first round")
	flag.StringVar(&o.clientCPU, "client-cpu", "0", "CPU list for this client and the mock cell")
	flag.StringVar(&o.proxyCPU, "proxy-cpu", "1", "CPU list for the proxy under test")
	flag.IntVar(&o.workers, "workers", 1, "go-router --workers (GOMAXPROCS); the process stays pinned to --proxy-cpu")
	flag.BoolVar(&o.plain, "plain", false, "run go-router with no per-placement features and --access-log off (default: every feature on, access log to a file)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configs)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	url  string
	pid  int // proxy process whose CPU time is charged to this target; 0 for direct
	lat  []time.Duration
	cpu  time.Duration
	// roundP50 is the p50 of each round, for the spread of the ratios.
	roundP50 []time.Duration
}

func run(o options) error {
	if err := pin(os.Getpid(), o.clientCPU); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cellbench-latency-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("files in", dir)
	}
	cellAddr, nginxAddr := freeAddr(), freeAddr()

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	start := func(cpu string, name string, args ...string) (int, error) {
		cmd := exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
		logf, err := os.CreateTemp(dir, filepath.Base(name)+"-*.log")
		if err != nil {
			return 0, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		// The processes go with this one even when it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, cmd)
		return cmd.Process.Pid, nil // taskset execs the program: same pid
	}

	if _, err := start(o.clientCPU, o.mock, "--cell", "bench="+cellAddr, "--admin", freeAddr()); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "router.json")
	doc := routerConfig(cellAddr)
	if o.plain {
		doc = plainRouterConfig(cellAddr)
	}
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		return err
	}
	targets := []*target{{name: "direct", url: "http://" + cellAddr + "/bench"}}
	routers := strings.Split(o.router, ",")
	for i, bin := range routers {
		routerAddr, accessLog := freeAddr(), filepath.Join(dir, fmt.Sprintf("router-%d-access.log", i+1))
		if o.plain {
			accessLog = "off"
		}
		pid, err := start(o.proxyCPU, bin, "--config", cfg, "--listen", routerAddr, "--admin", freeAddr(),
			"--access-log", accessLog, "--workers", fmt.Sprint(o.workers))
		if err != nil {
			return err
		}
		name := filepath.Base(bin)
		if len(routers) > 1 {
			name = fmt.Sprintf("%s (%d)", name, i+1)
		}
		targets = append(targets, &target{name: name, url: "http://" + routerAddr + "/bench", pid: pid})
	}
	if o.nginx != "" {
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConfig(dir, nginxAddr, cellAddr)), 0o644); err != nil {
			return err
		}
		nginxPid, err := start(o.proxyCPU, o.nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "nginx-error.log"))
		if err != nil {
			return err
		}
		targets = append(targets, &target{name: "nginx", url: "http://" + nginxAddr + "/bench", pid: nginxPid})
	}

	if o.bare != "" {
		bareAddr := freeAddr()
		pid, err := start(o.proxyCPU, o.bare, "--listen", bareAddr, "--upstream", "http://"+cellAddr)
		if err != nil {
			return err
		}
		targets = append(targets, &target{name: filepath.Base(o.bare), url: "http://" + bareAddr + "/bench", pid: pid})
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}}
	for _, t := range targets {
		if err := waitReady(client, t.url); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if _, err := measure(client, t.url, o.warmup, o.gap); err != nil {
			return fmt.Errorf("%s warmup: %w", t.name, err)
		}
	}
	for range o.rounds {
		for _, t := range targets {
			cpuBefore := cpuTime(t.pid)
			lat, err := measure(client, t.url, o.requests, o.gap)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.cpu += cpuTime(t.pid) - cpuBefore
			t.lat = append(t.lat, lat...)
			slices.Sort(lat)
			t.roundP50 = append(t.roundP50, pct(lat, 50))
		}
	}
	report(o, targets)
	return nil
}

func measure(client *http.Client, url string, n int, gap time.Duration) ([]time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Routing-Key", "acme")
	lat := make([]time.Duration, 0, n)
	for range n {
		if gap > 0 {
			time.Sleep(gap)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	return lat, nil
}

func report(o options, targets []*target) {
	features := "every feature on, access log to a file"
	if o.plain {
		features = "no features, access log off"
	}
	pacing := "back to back"
	if o.gap > 0 {
		pacing = fmt.Sprintf("%v between requests", o.gap)
	}
	fmt.Printf("closed loop, 1 connection, %s, %d rounds x %d requests per target; client+cell on CPU %s, proxy on CPU %s; go-router --workers %d, %s\n",
		pacing, o.rounds, o.requests, o.clientCPU, o.proxyCPU, o.workers, features)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\tp50 µs\tp90 µs\tp99 µs\tadded p50 µs\tadded p99 µs\tproxy CPU µs/req\t")
	direct := targets[0]
	for _, t := range targets {
		slices.Sort(t.lat)
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", t.name,
			us(pct(t.lat, 50)), us(pct(t.lat, 90)), us(pct(t.lat, 99)),
			us(pct(t.lat, 50)-pct(direct.lat, 50)), us(pct(t.lat, 99)-pct(direct.lat, 99)),
			us(t.cpu)/float64(len(t.lat)))
	}
	w.Flush()
	var nginx *target
	for _, t := range targets {
		if t.name == "nginx" {
			nginx = t
		}
	}
	if nginx == nil {
		return
	}
	added := func(t *target, p float64) float64 { return us(pct(t.lat, p) - pct(direct.lat, p)) }
	for _, t := range targets[1:] {
		if t == nginx {
			continue
		}
		// Per round: this proxy's added p50 over nginx's, both against the
		// direct p50 of the same round.
		ratios := make([]float64, len(t.roundP50))
		for i := range ratios {
			ratios[i] = us(t.roundP50[i]-direct.roundP50[i]) / us(nginx.roundP50[i]-direct.roundP50[i])
		}
		slices.Sort(ratios)
		fmt.Printf("%s / nginx added latency: p50 %.2f, p99 %.2f; per-round p50 ratio min %.2f median %.2f max %.2f\n", t.name,
			added(t, 50)/added(nginx, 50), added(t, 99)/added(nginx, 99), ratios[0], ratios[len(ratios)/2], ratios[len(ratios)-1])
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuTime is the user+system CPU time of a process so far (0 for pid 0).
// /proc counts clock ticks of 10 ms, fine enough over a few thousand requests.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func pin(pid int, cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, fmt.Sprint(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	return nil
}

func waitReady(client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("X-Routing-Key", "acme")
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("not ready within 10 s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// routerConfig turns every feature on, with limits the run never reaches.
func routerConfig(cell string) string {
	return strings.ReplaceAll(`{
  "version": "latency-1",
  "default_placement": "bench",
  "routes": {"acme": "bench"},
  "placements": {
    "bench": {
      "kind": "dedicated", "endpoint": "http://CELL", "fallback": "backup",
      "timeouts": {"connect_ms": 1000, "response_header_ms": 15000},
      "health_check": {"path": "/health", "interval_ms": 1000, "timeout_ms": 500, "unhealthy_threshold": 2, "healthy_threshold": 2},
      "circuit_breaker": {"failure_threshold": 5, "open_ms": 10000},
      "rate_limit": {"requests_per_second": 1000000, "burst": 1000000, "per": "routing_key"},
      "retry": {"max_attempts": 2},
      "concurrency_limit": 10000,
      "max_request_body_bytes": 10485760
    },
    "backup": {"kind": "shared", "endpoint": "http://CELL"}
  }
}`, "CELL", cell)
}

// plainRouterConfig has no health check, breaker, rate limit, retry or limits.
func plainRouterConfig(cell string) string {
	return strings.ReplaceAll(`{"version": "latency-plain", "default_placement": "bench", "routes": {"acme": "bench"},
  "placements": {"bench": {"kind": "dedicated", "endpoint": "http://CELL"}}}`, "CELL", cell)
}

// nginxConfig is a plain keep-alive reverse proxy with one worker and a
// buffered access log, the fair counterpart of go-router's.
func nginxConfig(dir, listen, cell string) string {
	return fmt.Sprintf(`worker_processes 1;
daemon off;
master_process off;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log %[1]s/nginx-access.log combined buffer=64k flush=100ms;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  upstream cell { server %[3]s; keepalive 32; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://cell;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`, dir, listen, cell)
}
