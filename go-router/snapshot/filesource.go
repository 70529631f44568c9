package snapshot

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Timing of the file source: events are debounced briefly because editors
// and atomic renames produce bursts, and a poll catches what notifications
// miss (network filesystems, a watch that failed); both stay well inside
// the contract's 1 s.
const (
	fileDebounce = 50 * time.Millisecond
	filePoll     = 500 * time.Millisecond
)

// FileSource applies a config file whenever it changes and on Reload.
type FileSource struct {
	path   string
	store  *SnapshotStore
	events *slog.Logger
	reload chan struct{}
	// last is the content most recently handed to Apply, applied or not:
	// the same bytes are not applied twice unless a reload asks for it.
	last []byte
	// polled is the file as the poll last saw it; the poll reads the file
	// only when its size, mtime or inode moved.
	polled os.FileInfo
}

// NewFileSource watches path for store. bootstrap is the content already applied.
func NewFileSource(path string, store *SnapshotStore, events *slog.Logger, bootstrap []byte) *FileSource {
	return &FileSource{path: path, store: store, events: events, reload: make(chan struct{}, 1), last: bootstrap}
}

// Reload asks Run to re-read and apply the file now (SIGHUP).
func (f *FileSource) Reload() {
	select {
	case f.reload <- struct{}{}:
	default:
	}
}

// Run watches until ctx is done. It watches the directory, not the file:
// an atomic rename replaces the inode a file watch would be attached to.
func (f *FileSource) Run(ctx context.Context) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := fsnotify.NewWatcher(); err != nil {
		f.events.Warn("config_watch_failed", "path", f.path, "error", err.Error())
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(f.path)); err != nil {
			f.events.Warn("config_watch_failed", "path", f.path, "error", err.Error())
		} else {
			events, errs = w.Events, w.Errors
		}
	}
	name := filepath.Clean(f.path)
	poll := time.NewTicker(filePoll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if filepath.Clean(ev.Name) == name {
				debounce.Reset(fileDebounce)
			}
		case err := <-errs:
			f.events.Warn("config_watch_failed", "path", f.path, "error", err.Error())
		case <-debounce.C:
			f.check(false)
		case <-poll.C:
			if fi, err := os.Stat(f.path); err == nil && !sameFileInfo(fi, f.polled) {
				f.polled = fi
				f.check(false)
			}
		case <-f.reload:
			f.check(true)
		}
	}
}

// check reads the file and applies it if it changed (or force is set).
// A missing or unreadable file keeps the last good config; it is usually
// the moment between an unlink and a rename.
func (f *FileSource) check(force bool) {
	doc, err := os.ReadFile(f.path)
	if err != nil {
		if force {
			f.events.Warn("config_read_failed", "path", f.path, "error", err.Error())
		}
		return
	}
	if !force && bytes.Equal(doc, f.last) {
		return
	}
	f.last = doc
	_ = f.store.Apply(doc, SourceFile)
}

func sameFileInfo(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
