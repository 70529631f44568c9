// Package filewatch tells when a config file may have changed. The router
// (go-router/snapshot.FileSource) and the control plane watch their files
// with it, so both react the same way and log the same event.
//
// It watches the file's directory, not the file: an atomic rename replaces
// the inode a watch on the file would stay attached to. Events are settled
// for Settle, because editors and renames produce bursts, and a stat poll
// backs the notifier up (network filesystems, symlink swaps such as
// Kubernetes ConfigMaps, dropped events, a notifier that could not start).
// The caller reads the file and skips content it has already seen: a call
// means "may have changed", not "has changed".
package filewatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// Settle is how long a burst of events must be quiet before the call.
	Settle = 50 * time.Millisecond
	// DefaultPoll is the stat poll's period; with Settle it stays well
	// inside the contract's 1 s to pick a change up.
	DefaultPoll = 500 * time.Millisecond
)

// Watch calls changed, from Watch's goroutine, whenever the file at path
// may have changed, until ctx ends. poll is the stat poll's period (0:
// DefaultPoll). A notifier that fails, to start or later, is logged as
// config_watch_failed (path, error); the poll carries on regardless.
func Watch(ctx context.Context, path string, poll time.Duration, log *slog.Logger, changed func()) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	failed := func(err error) { log.Warn("config_watch_failed", "path", path, "error", err.Error()) }
	if w, err := fsnotify.NewWatcher(); err != nil {
		failed(err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			failed(err)
		} else {
			events, errs = w.Events, w.Errors
		}
	}
	target := filepath.Clean(path)
	// The first poll always calls: the file may have changed between the
	// caller's first read and the notifier's start.
	var last os.FileInfo
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the notifier is gone; the poll remains
				continue
			}
			if filepath.Clean(ev.Name) == target {
				settle.Reset(Settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			failed(err)
		case <-settle.C:
			if fi, err := os.Stat(path); err == nil {
				last = fi
			}
			changed()
		case <-ticker.C:
			// A file that cannot be stat'ed is usually between an unlink
			// and a rename: the next poll sees what replaced it.
			if fi, err := os.Stat(path); err == nil && !same(fi, last) {
				last = fi
				changed()
			}
		}
	}
}

// same reports whether a and b are the same file with the same size and
// modification time: any save changes at least one of these (the inode
// tells an atomic rename from an in-place rewrite of the same size and
// time).
func same(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
