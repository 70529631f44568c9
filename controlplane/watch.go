package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settleDelay lets a burst of events from one save (truncate, write,
// chmod; or create then rename) settle into one reload.
const settleDelay = 50 * time.Millisecond

// watchFile calls reload when the file at path may have changed, until ctx
// ends. It watches the directory, not the file, because an atomic rename
// replaces the file's inode and a watch on the old inode would go silent.
// A cheap stat poll backs fsnotify up (network filesystems, symlink swaps
// such as Kubernetes ConfigMaps, dropped events). reload itself skips
// content it has already seen. Only setting the watcher up can fail.
func watchFile(ctx context.Context, log *slog.Logger, path string, poll time.Duration, reload func()) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer watcher.Close()
	if err := watcher.Add(filepath.Dir(path)); err != nil {
		return err
	}
	target := filepath.Clean(path)
	last := fingerprintOf(path)

	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	settle := time.NewTimer(settleDelay)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) == target {
				settle.Reset(settleDelay)
			}
		case err, ok := <-watcher.Errors:
			if !ok {
				return nil
			}
			log.Warn("config_watch_error", "path", path, "error", err.Error())
		case <-ticker.C:
			if now := fingerprintOf(path); now != last {
				last = now
				reload()
			}
		case <-settle.C:
			last = fingerprintOf(path)
			reload()
		}
	}
}

// fingerprint is what the poll compares: any save changes at least one of these.
type fingerprint struct {
	modTime time.Time
	size    int64
	inode   uint64
}

func fingerprintOf(path string) fingerprint {
	fi, err := os.Stat(path)
	if err != nil {
		return fingerprint{}
	}
	return fingerprint{modTime: fi.ModTime(), size: fi.Size(), inode: inodeOf(fi)}
}
