package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellbench/internal/proc"
	"cellbench/internal/testkit"
)

// TestUpServesAndStopsOnSIGTERM runs `harness up` as a person would, sends
// requests through every router it lists, pushes a config version through
// its control plane, then sends SIGTERM and checks that every listed
// address stops answering.
func TestUpServesAndStopsOnSIGTERM(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinaries(t, "harness", "go-router", "mockbackends", "controlplane")
	targets := []string{"go", "go-tuned"}
	args := []string{"up", "--skip-build", "--out", t.TempDir(), "--go-router", filepath.Join(bin, "go-router"),
		"--mockbackends", filepath.Join(bin, "mockbackends"), "--controlplane", filepath.Join(bin, "controlplane")}
	for _, p := range []string{"target/release/pingora-router", "target/debug/pingora-router"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			targets = append(targets, "pingora")
			args = append(args, "--pingora-router", p)
			break
		}
	}
	if nginxBinary("") != "" {
		targets = append(targets, "nginx")
	}
	args = append(args, "--targets", strings.Join(targets, ","))
	var out testkit.Buffer
	up := testkit.Start(t, proc.Spec{Name: "harness up", Path: filepath.Join(bin, "harness"), Args: args, Dir: root,
		Stdout: &out, Stderr: os.Stderr, Ready: func(l string) bool { return l == "ready" }})
	if _, err := up.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The listing comes before "ready".
	listed := map[string]string{}
	line := regexp.MustCompile(`^  (\S+(?: \S+)?)\s+http://(\S+)`)
	for _, l := range strings.Split(out.String(), "\n") {
		if l == "ready" {
			break
		}
		if m := line.FindStringSubmatch(l); m != nil {
			listed[m[1]] = m[2]
		}
	}
	for _, want := range append([]string{"control plane", "cells admin", "cell tier1"}, targets...) {
		if listed[want] == "" {
			t.Fatalf("%q not listed: %v", want, listed)
		}
	}

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(addr string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/poke", nil)
		req.Header.Set("X-Routing-Key", "acme")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tg := range targets {
		if resp := get(listed[tg]); resp.StatusCode != 200 || resp.Header.Get("X-Routed-To") != "tier1" {
			t.Errorf("%s: %d, routed to %q", tg, resp.StatusCode, resp.Header.Get("X-Routed-To"))
		}
	}
	// A push reaches the routers subscribed to the control plane.
	doc, err := os.ReadFile(filepath.Join(args[3], "router.json"))
	if err != nil {
		t.Fatal(err)
	}
	pushed := regexp.MustCompile(`"version": *"[^"]*"`).ReplaceAllString(string(doc), `"version":"poke-2"`)
	req, _ := http.NewRequest("PUT", "http://"+listed["control plane"]+"/config", strings.NewReader(pushed))
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("push: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, tg := range targets {
		if tg == "nginx" {
			continue
		}
		for start := time.Now(); get(listed[tg]).Header.Get("X-Config-Version") != "poke-2"; {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s never served poke-2", tg)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	up.Signal(syscall.SIGTERM)
	if code, ok := up.WaitExit(30 * time.Second); !ok {
		t.Fatal("harness up still running 30 s after SIGTERM")
	} else if code != 130 {
		t.Errorf("harness up after SIGTERM: %v (want exit 130)", up.Err())
	}
	for name, addr := range listed {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s (%s) still accepts connections after SIGTERM", name, addr)
		}
	}
}
