// Command mockbackends runs mock upstream cells for the routers under test:
// one per placement of a router config and/or per --cell flag, plus an
// admin listener with the chaos API. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"cellbench/config"
	"cellbench/mockbackends/admin"
	"cellbench/mockbackends/cell"
)

const (
	exitUsage = 2
	// shutdownGrace bounds how long SIGTERM waits for requests in progress
	// (a delay_ms request may otherwise hold the exit for an hour).
	shutdownGrace = 3 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cellSpec is one cell to start, from a placement or a --cell flag.
type cellSpec struct {
	name, addr, healthPath, source string
}

// cellFlags collects repeated --cell NAME=ADDR flags.
type cellFlags []cellSpec

func (f *cellFlags) String() string { return "" }

func (f *cellFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" || addr == "" {
		return fmt.Errorf("want NAME=HOST:PORT, got %q", v)
	}
	*f = append(*f, cellSpec{name: name, addr: addr, source: "--cell " + v})
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mockbackends", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "router config `PATH`: one cell per placement endpoint")
	adminAddr := fs.String("admin", "127.0.0.1:9900", "chaos API listen `ADDR`")
	var extra cellFlags
	fs.Var(&extra, "cell", "add a cell `NAME=HOST:PORT` (repeatable; port 0 picks a free port)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mockbackends: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	// Registered before any listener so that a SIGTERM during startup is a
	// clean exit too.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{ReplaceAttr: eventLogAttr}))

	specs, err := collectSpecs(*configPath, extra)
	if err != nil {
		fmt.Fprintf(stderr, "mockbackends: %v\n", err)
		return exitUsage
	}
	cells := make([]*cell.Cell, 0, len(specs))
	stopCells := func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		for _, c := range cells {
			c.Shutdown(ctx)
		}
	}
	for _, s := range specs {
		c, err := cell.New(s.name, s.addr, cell.Options{HealthPath: s.healthPath, Logger: logger})
		if err == nil {
			err = c.Start()
		}
		if err != nil {
			fmt.Fprintf(stderr, "mockbackends: %s: %v\n", s.source, err)
			stopCells()
			return exitUsage
		}
		cells = append(cells, c)
	}

	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "mockbackends: --admin: %v\n", err)
		stopCells()
		return exitUsage
	}
	adminSrv := &http.Server{Handler: admin.Handler(cells), ReadHeaderTimeout: 10 * time.Second}
	adminDone := make(chan error, 1)
	go func() { adminDone <- adminSrv.Serve(adminLn) }()

	ready := struct {
		Msg   string            `json:"msg"`
		Admin string            `json:"admin"`
		Cells map[string]string `json:"cells"`
	}{Msg: "ready", Admin: adminLn.Addr().String(), Cells: make(map[string]string, len(cells))}
	for _, c := range cells {
		ready.Cells[c.Name()] = c.Addr()
	}
	line, _ := json.Marshal(ready)
	fmt.Fprintf(stdout, "%s\n", line)

	status := 0
	select {
	case <-ctx.Done():
	case err := <-adminDone:
		logger.Error("admin_failed", "error", err.Error())
		status = 1
	}
	logger.Info("shutdown", "cells", len(cells))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	adminSrv.Shutdown(shutdownCtx)
	stopCells()
	return status
}

// eventLogAttr shapes stderr events like the routers' event log: "ts" in
// RFC 3339 UTC instead of slog's "time".
func eventLogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.String("ts", a.Value.Time().UTC().Format(time.RFC3339Nano))
	}
	return a
}

// collectSpecs turns the config's placements and the --cell flags into the
// cells to start, refusing duplicate names and two cells on one address.
func collectSpecs(configPath string, extra []cellSpec) ([]cellSpec, error) {
	var specs []cellSpec
	if configPath != "" {
		doc, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("--config: %v", err)
		}
		cfg, err := config.Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("--config %s: %v", configPath, err)
		}
		for _, name := range slices.Sorted(maps.Keys(cfg.Placements)) {
			p := cfg.Placements[name]
			u, err := url.Parse(p.Endpoint)
			if err != nil {
				// config.Parse has validated the endpoint already.
				return nil, fmt.Errorf("--config %s: placement %s: %v", configPath, name, err)
			}
			s := cellSpec{name: name, addr: u.Host, source: "placement " + name}
			if p.HealthCheck != nil {
				s.healthPath = p.HealthCheck.Path
			}
			specs = append(specs, s)
		}
	}
	specs = append(specs, extra...)
	if len(specs) == 0 {
		return nil, errors.New("no cells: give --config PATH and/or --cell NAME=HOST:PORT")
	}
	byName := make(map[string]string)
	byAddr := make(map[string]string)
	for _, s := range specs {
		if prev, dup := byName[s.name]; dup {
			return nil, fmt.Errorf("cell name %q is given twice (%s and %s)", s.name, prev, s.source)
		}
		byName[s.name] = s.source
		host, port, err := net.SplitHostPort(s.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: address %q must be host:port", s.source, s.addr)
		}
		if port == "0" {
			continue // every port 0 binds a different free port
		}
		key := net.JoinHostPort(strings.ToLower(host), port)
		if prev, dup := byAddr[key]; dup {
			return nil, fmt.Errorf("%s and %s both listen on %s; each cell needs its own address", prev, s.source, key)
		}
		byAddr[key] = s.source
	}
	return specs, nil
}
