// Command mockbackends runs mock upstream cells for the routers under test:
// one per placement of a router config and/or per --cell flag, plus an
// admin listener with the chaos API. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cellbench/mockbackends/admin"
	"cellbench/mockbackends/cell"
	"cellbench/mockbackends/ready"
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
	cells, err := startCells(specs, logger)
	if err != nil {
		fmt.Fprintf(stderr, "mockbackends: %v\n", err)
		return exitUsage
	}

	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "mockbackends: --admin: %v\n", err)
		stopCells(cells)
		return exitUsage
	}
	adminSrv := &http.Server{Handler: admin.Handler(cells), ReadHeaderTimeout: 10 * time.Second}
	adminDone := make(chan error, 1)
	go func() { adminDone <- adminSrv.Serve(adminLn) }()

	addrs := make(map[string]string, len(cells))
	for _, c := range cells {
		addrs[c.Name()] = c.Addr()
	}
	ready.New(adminLn.Addr().String(), addrs).Write(stdout)

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
	stopCells(cells)
	return status
}

// startCells binds every cell; on a failure it stops those already started.
func startCells(specs []cellSpec, logger *slog.Logger) ([]*cell.Cell, error) {
	cells := make([]*cell.Cell, 0, len(specs))
	for _, s := range specs {
		c, err := cell.New(s.name, s.addr, cell.Options{HealthPath: s.healthPath, Logger: logger})
		if err == nil {
			err = c.Start()
		}
		if err != nil {
			stopCells(cells)
			return nil, fmt.Errorf("%s: %v", s.source, err)
		}
		cells = append(cells, c)
	}
	return cells, nil
}

// stopCells lets requests in progress finish within shutdownGrace, then
// closes what is left.
func stopCells(cells []*cell.Cell) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, c := range cells {
		c.Shutdown(ctx)
	}
}

// eventLogAttr shapes stderr events like the routers' event log: "ts" in
// RFC 3339 UTC instead of slog's "time".
func eventLogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.String("ts", a.Value.Time().UTC().Format(time.RFC3339Nano))
	}
	return a
}
