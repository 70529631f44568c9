// Command controlplane is cellbench's control plane (contract section 7):
// it holds the config document (a watched file, also writable with
// PUT /config) and pushes every valid change as a full snapshot to each
// connected router over a WebSocket, tracking who applied what in /status.
//
//	controlplane --config PATH [--listen 127.0.0.1:8081] [--token-file PATH]
//
// The bearer token comes from --token or --token-file (not both), else from
// CELLBENCH_CP_TOKEN; prefer the file or the variable, as a flag shows in
// ps. No token means no authentication.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cellbench/config"
	"cellbench/controlplane/protocol"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// Exit statuses.
const (
	exitOK            = 0
	exitFailure       = 1
	exitInvalidConfig = 2 // missing or invalid config, or bad flags (as for the routers)
)

func run(args []string) int {
	flags := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	configPath := flags.String("config", "", "config document to serve and watch (required)")
	listen := flags.String("listen", "127.0.0.1:8081", "address for the WebSocket and HTTP API")
	tokenFlag := flags.String("token", "", "bearer token required by /connect and PUT /config (visible in ps: prefer --token-file or "+protocol.TokenEnv+")")
	tokenFile := flags.String("token-file", "", "file holding the bearer token (trailing newline ignored)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitInvalidConfig // the flag package has printed the problem and the usage
	}
	log := newLogger()
	token, err := protocol.ResolveToken(*tokenFlag, *tokenFile)
	if err != nil {
		log.Error("token_rejected", "error", err.Error())
		return exitInvalidConfig
	}
	if *configPath == "" {
		log.Error("config_rejected", "source", sourceStartup, "error", "--config is required")
		return exitInvalidConfig
	}

	srv, err := newServer(log, *configPath, token, defaultTiming())
	if err != nil {
		log.Error("config_rejected", "source", sourceStartup, "path", *configPath, "code", config.CodeOf(err), "error", err.Error())
		return exitInvalidConfig
	}
	log.Info("config_applied", "source", sourceStartup, "path", *configPath, "version", srv.hub.document().version)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen_failed", "addr", *listen, "error", err.Error())
		return exitFailure
	}
	log.Info("listening", "addr", ln.Addr().String(), "token_required", token != "")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP re-reads the file now, as it does for the routers (and the
	// default action, exiting, would surprise an operator).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			log.Info("sighup", "path", *configPath)
			srv.reloadFile()
		}
	}()
	err = srv.serve(ctx, ln)
	log.Info("shutdown", "reason", shutdownReason(ctx, err))
	if err != nil && !errors.Is(err, context.Canceled) {
		return exitFailure
	}
	return exitOK
}

func shutdownReason(ctx context.Context, err error) string {
	if err != nil {
		return err.Error()
	}
	if ctx.Err() != nil {
		return "signal"
	}
	return "stopped"
}

// newLogger writes the JSON event log on stderr with the contract's field
// names: "ts" in RFC 3339 UTC, "level", "msg".
func newLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.String("ts", a.Value.Time().UTC().Format(time.RFC3339Nano))
			}
			return a
		},
	}))
}
