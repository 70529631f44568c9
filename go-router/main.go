// Command go-router is the cellbench cell router on Go's net/http
// (contract sections 1-6): it routes by X-Routing-Key to placements,
// guards them with health checks, breakers, rate and concurrency limits,
// and takes its config from a watched file or a control plane.
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
	"runtime"
	"syscall"
	"time"

	"cellbench/config"
	"cellbench/controlplane/client"
	"cellbench/controlplane/protocol"
	"cellbench/go-router/engine"
	"cellbench/go-router/obs"
	"cellbench/go-router/proxy"
	"cellbench/go-router/snapshot"
)

// Exit statuses.
const (
	exitOK     = 0
	exitConfig = 2 // missing or invalid config at startup (contract section 5)
	exitServe  = 1 // a listener could not be opened
)

// maxHeaderBytes makes the server answer 431 to a request head over 64 KiB
// (contract wire rules). net/http allows MaxHeaderBytes plus 4096 bytes of
// slack before it refuses, so the setting is 4 KiB below the limit.
const maxHeaderBytes = 64<<10 - 4096

type options struct {
	engine            engine.Engine
	configPath        string
	listen            string
	admin             string
	controlPlane      string
	controlPlaneToken string // resolved from the flag, the file or the environment
	nodeID            string
	accessLog         string
	workers           int
	drainTimeoutMs    int
	client            *clientFlags
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("go-router", flag.ContinueOnError)
	engineName := fs.String("engine", string(engine.Tuned), "HTTP/1.1 engine: stdlib (net/http alone) or tuned (own fast path, client and parsers, rawconn)")
	fs.StringVar(&o.configPath, "config", "", "config file: the bootstrap and, without --control-plane, the watched source (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "proxy listen address")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9901", "admin listen address")
	fs.StringVar(&o.controlPlane, "control-plane", "", "control plane WebSocket URL, e.g. ws://127.0.0.1:8081/connect")
	fs.StringVar(&o.controlPlaneToken, "control-plane-token", "", "bearer token for the control plane (visible in ps: prefer --control-plane-token-file or "+protocol.TokenEnv+")")
	tokenFile := fs.String("control-plane-token-file", "", "file holding the control-plane bearer token (trailing newline ignored)")
	fs.StringVar(&o.nodeID, "node-id", "", "node id sent to the control plane (default <hostname>-<pid>)")
	fs.StringVar(&o.accessLog, "access-log", "stdout", "access log: stdout, off, or a file path")
	fs.IntVar(&o.workers, "workers", 0, "OS threads running Go code (GOMAXPROCS); 0 = all cores")
	fs.IntVar(&o.drainTimeoutMs, "drain-timeout-ms", 5000, "how long in-flight requests may finish after SIGTERM/SIGINT")
	o.client = addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := o.client.validate(); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.workers < 0 || o.drainTimeoutMs < 0 {
		return o, errors.New("--workers and --drain-timeout-ms must not be negative")
	}
	var err error
	if o.controlPlaneToken, err = protocol.ResolveToken(o.controlPlaneToken, *tokenFile); err != nil {
		return o, err
	}
	o.engine, err = engine.Parse(*engineName)
	return o, err
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	if o.workers > 0 {
		runtime.GOMAXPROCS(o.workers)
	}
	events := newEventLogger(os.Stderr)

	if o.configPath == "" {
		fmt.Fprintln(os.Stderr, "config_missing: --config is required")
		return exitConfig
	}
	doc, err := os.ReadFile(o.configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "config_missing: %v\n", err)
		return exitConfig
	}
	if _, err := config.Parse(doc); err != nil {
		events.Error("config_rejected", "source", snapshot.SourceFile, "code", config.CodeOf(err), "error", err.Error())
		fmt.Fprintln(os.Stderr, err.Error())
		return exitConfig
	}

	access, err := openAccessLog(o.accessLog)
	if err != nil {
		fmt.Fprintf(os.Stderr, "access log: %v\n", err)
		return exitServe
	}
	rt := proxy.New(proxy.Options{Engine: o.engine, Events: events, AccessLog: access})
	defer rt.Close()
	if err := rt.Store().Apply(doc, snapshot.SourceFile); err != nil { // validated above
		fmt.Fprintln(os.Stderr, err.Error())
		return exitConfig
	}

	proxyLn, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen %s: %v\n", o.listen, err)
		return exitServe
	}
	adminLn, err := net.Listen("tcp", o.admin)
	if err != nil {
		proxyLn.Close()
		fmt.Fprintf(os.Stderr, "admin listen %s: %v\n", o.admin, err)
		return exitServe
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var fileSource *snapshot.FileSource
	if o.controlPlane != "" {
		go client.Run(ctx, client.Options{
			URL:            o.controlPlane,
			Token:          o.controlPlaneToken,
			NodeID:         o.nodeID,
			Router:         engine.RouterName,
			CurrentVersion: rt.Store().Version,
			Apply: func(_ string, doc []byte) error {
				return rt.Store().Apply(doc, snapshot.SourceControlPlane)
			},
			OnConnected: rt.SetControlPlaneConnected,
			Logger:      events,
		})
	} else {
		fileSource = snapshot.NewFileSource(o.configPath, rt.Store(), events, doc)
		go fileSource.Run(ctx)
	}

	httpServer := newHTTPServer(rt, events)
	proxyLn = o.client.protect(httpServer, engineListener(o.engine, proxyLn))
	rt.ReadClientStats(o.client.stats)
	proxyServer := newProxyServer(o.engine, httpServer)
	admin := &http.Server{Handler: rt.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	events.Info("started", "router", engine.RouterName, "engine", string(o.engine), "listen", proxyLn.Addr().String(), "admin", adminLn.Addr().String())
	serveErr := make(chan error, 2)
	go func() { serveErr <- proxyServer.Serve(proxyLn) }()
	go func() { serveErr <- admin.Serve(adminLn) }()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-serveErr:
			events.Error("shutdown", "reason", "listener failed", "error", err.Error())
			return exitServe
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if fileSource != nil {
					fileSource.Reload()
				} else {
					events.Info("sighup_ignored", "reason", "config comes from the control plane")
				}
				continue
			}
			drain(events, proxyServer, admin, time.Duration(o.drainTimeoutMs)*time.Millisecond, sig)
			stop()
			if access != nil {
				_ = access.Close()
			}
			return exitOK
		}
	}
}

// newHTTPServer is the net/http.Server of the proxy listener: the stdlib
// engine serves with it alone, the tuned one hands it the connections its
// fast path does not take.
func newHTTPServer(handler http.Handler, events *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(events.Handler(), slog.LevelWarn),
		// "OPTIONS *" is routed and proxied like any request, as Pingora
		// does, rather than answered by net/http itself (RFC 9112 §3.2.4).
		DisableGeneralOptionsHandler: true,
	}
}

// drain stops accepting, lets in-flight requests finish within timeout and
// then closes what is left.
func drain(events *slog.Logger, server proxyServer, admin *http.Server, timeout time.Duration, sig os.Signal) {
	events.Info("shutdown", "signal", sig.String(), "phase", "draining", "drain_timeout_ms", timeout.Milliseconds())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := server.Shutdown(ctx)
	if err != nil {
		server.Close()
	}
	admin.Close()
	events.Info("shutdown", "signal", sig.String(), "phase", "done", "drained", err == nil)
}

func openAccessLog(target string) (*obs.AccessLog, error) {
	switch target {
	case "off":
		return nil, nil
	case "stdout", "":
		return obs.NewAccessLog(os.Stdout, nil), nil
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return obs.NewAccessLog(f, f), nil
}

// newEventLogger writes the event log (contract section 4): JSON lines
// with "ts" in RFC 3339 UTC, like the access log.
func newEventLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.String("ts", a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
			}
			return a
		},
	}))
}
