package snapshot

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"

	"cellbench/internal/filewatch"
)

// FileSource applies a config file whenever it changes (internal/filewatch:
// the directory watched, a 500 ms poll behind it, bursts settled) and on
// Reload (SIGHUP).
type FileSource struct {
	path   string
	store  *SnapshotStore
	events *slog.Logger

	mu sync.Mutex
	// last is the content most recently handed to Apply, applied or not:
	// the same bytes are not applied twice unless a reload asks for it.
	last []byte
}

// NewFileSource watches path for store. bootstrap is the content already applied.
func NewFileSource(path string, store *SnapshotStore, events *slog.Logger, bootstrap []byte) *FileSource {
	return &FileSource{path: path, store: store, events: events, last: bootstrap}
}

// Reload re-reads and applies the file now, even if it did not change.
func (f *FileSource) Reload() { f.check(true) }

// Run watches until ctx is done.
func (f *FileSource) Run(ctx context.Context) {
	filewatch.Watch(ctx, f.path, filewatch.DefaultPoll, f.events, func() { f.check(false) })
}

// check reads the file and applies it if it changed (or force is set).
// A missing or unreadable file keeps the last good config; it is usually
// the moment between an unlink and a rename.
func (f *FileSource) check(force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
