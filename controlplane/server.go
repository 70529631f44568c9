package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"cellbench/config"
	"cellbench/internal/filewatch"
)

// timing holds the protocol's clocks; tests shorten them.
type timing struct {
	pingInterval   time.Duration // CP → router pings
	silenceTimeout time.Duration // drop a router that sent nothing for this long
	writeTimeout   time.Duration // one snapshot or ping write
	helloTimeout   time.Duration // from upgrade to the hello frame
	pollInterval   time.Duration // config file stat poll (fsnotify is the fast path)
}

// closeGrace bounds the close frame written when a session ends.
const closeGrace = time.Second

// Config sources, as logged in config_applied / config_rejected.
const (
	sourceStartup = "startup"
	sourceFile    = "file"
	sourceAPI     = "api"
)

// server is the control plane: the config source of truth (a file, plus
// PUT /config, which is written back to that file so a restart keeps it),
// and the hub that fans every change out to the routers.
type server struct {
	log     *slog.Logger
	path    string
	token   string
	timing  timing
	hub     *hub
	metrics *metrics

	// update serialises the two writers of the document (file reload and
	// PUT), so that validate → persist → publish happens as one step.
	update sync.Mutex
	// lastFileBytes is what the file held at the last reload or PUT, valid
	// or not, so an unchanged file is neither re-published nor re-rejected.
	lastFileBytes []byte

	sessions sync.WaitGroup // connection goroutines, waited for at shutdown
}

func defaultTiming() timing {
	return timing{
		pingInterval:   5 * time.Second,
		silenceTimeout: 15 * time.Second,
		writeTimeout:   10 * time.Second,
		helloTimeout:   10 * time.Second,
		pollInterval:   500 * time.Millisecond,
	}
}

// newServer loads and validates the config file. A rejected document is
// returned as its *config.Error.
func newServer(log *slog.Logger, path, token string, t timing) (*server, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := newDocument(raw)
	if err != nil {
		return nil, err
	}
	h := newHub(doc)
	return &server{
		log:           log,
		path:          path,
		token:         token,
		timing:        t,
		hub:           h,
		metrics:       newMetrics(h.connectedNodes),
		lastFileBytes: raw,
	}, nil
}

// reloadFile re-reads the config file and publishes it if it changed and
// is valid. An invalid file is logged and never broadcast.
func (s *server) reloadFile() {
	// Read under the lock: bytes read before a concurrent PUT rewrote the
	// file would otherwise be published after it, rolling the fleet back.
	s.update.Lock()
	defer s.update.Unlock()
	raw, err := os.ReadFile(s.path)
	if err != nil {
		s.log.Warn("config_rejected", "source", sourceFile, "path", s.path, "error", err.Error())
		return
	}
	if string(raw) == string(s.lastFileBytes) {
		return
	}
	s.lastFileBytes = raw
	if s.hub.document().sameBytes(raw) {
		return
	}
	doc, err := newDocument(raw)
	if err != nil {
		s.log.Warn("config_rejected", "source", sourceFile, "path", s.path, "code", config.CodeOf(err), "error", err.Error())
		return
	}
	s.publish(doc, sourceFile)
}

// publish makes doc current and broadcasts it; the caller holds s.update.
func (s *server) publish(doc *document, source string) {
	if s.hub.document().version == doc.version {
		// Allowed, but X-Config-Version can no longer tell the two apart.
		s.log.Warn("config_version_reused", "source", source, "version", doc.version)
	}
	s.hub.publish(doc)
	s.log.Info("config_applied", "source", source, "version", doc.version)
}

// put validates a pushed document, writes it to the config file and
// publishes it. changed is false when the document is byte-identical to the
// current one (nothing is broadcast then).
func (s *server) put(raw []byte) (doc *document, changed bool, err error) {
	doc, err = newDocument(raw)
	if err != nil {
		return nil, false, err
	}
	s.update.Lock()
	defer s.update.Unlock()
	if current := s.hub.document(); current.sameBytes(raw) {
		return current, false, nil
	}
	if err := writeFileAtomic(s.path, raw); err != nil {
		return nil, false, fmt.Errorf("write %s: %w", s.path, err)
	}
	s.lastFileBytes = raw
	s.publish(doc, sourceAPI)
	return doc, true, nil
}

// writeFileAtomic replaces path with data by renaming a synced temporary
// file over it, so neither this process's watcher nor a crash ever sees a
// half-written document.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// serve runs the HTTP server on ln and the file watcher until ctx ends,
// then closes every router connection with "going away" and returns.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	httpServer := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		filewatch.Watch(watchCtx, s.path, s.timing.pollInterval, s.log, s.reloadFile)
	}()
	defer func() { stopWatch(); <-watched }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpServer.Shutdown(shutdownCtx) // stop accepting; hijacked WebSockets are ours to close
	s.hub.closeAll(websocket.CloseGoingAway, "control plane shutting down")
	s.sessions.Wait()
	return err
}
