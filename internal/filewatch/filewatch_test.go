package filewatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellbench/internal/testkit"
)

// watched runs Watch on path and returns the number of calls so far.
func watched(t *testing.T, path string, poll time.Duration, log *slog.Logger) func() int64 {
	t.Helper()
	var calls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, path, poll, log, func() { calls.Add(1) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return calls.Load
}

// An atomic rename, an in-place rewrite and a file recreated after a
// delete are each noticed, by the notifier well before the poll.
func TestWatchSeesRenameRewriteAndRecreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := watched(t, path, time.Hour, slog.New(slog.DiscardHandler))
	time.Sleep(20 * time.Millisecond) // the notifier is set up

	steps := []struct {
		name string
		do   func() error
	}{
		{"rename", func() error {
			tmp := filepath.Join(dir, ".config.json.tmp")
			if err := os.WriteFile(tmp, []byte("v2"), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}},
		{"rewrite", func() error { return os.WriteFile(path, []byte("v3"), 0o644) }},
		{"delete and recreate", func() error {
			if err := os.Remove(path); err != nil {
				return err
			}
			return os.WriteFile(path, []byte("v4"), 0o644)
		}},
	}
	for _, s := range steps {
		before := calls()
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 500*time.Millisecond, s.name, func() bool { return calls() > before })
	}
	// Another file in the directory is not the watched one.
	before := calls()
	if err := os.WriteFile(filepath.Join(dir, "other.json"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * Settle)
	if calls() != before {
		t.Error("a write to another file of the directory was reported")
	}
}

// A burst of writes settles into one call.
func TestWatchSettlesBursts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := watched(t, path, time.Hour, slog.New(slog.DiscardHandler))
	time.Sleep(20 * time.Millisecond)
	for i := range 5 {
		if err := os.WriteFile(path, []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, time.Second, "the burst", func() bool { return calls() > 0 })
	time.Sleep(4 * Settle)
	if n := calls(); n != 1 {
		t.Fatalf("%d calls for one burst, want 1", n)
	}
}

// Without a notifier (its directory cannot be watched) the failure is
// logged as config_watch_failed and the poll alone notices changes, once
// per change.
func TestWatchPollsWithoutNotifier(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing-dir", "config.json")
	var logged testkit.Buffer
	calls := watched(t, path, 20*time.Millisecond, slog.New(slog.NewJSONHandler(&logged, nil)))
	testkit.WaitFor(t, time.Second, "config_watch_failed", func() bool {
		return strings.Contains(logged.String(), `"msg":"config_watch_failed"`) && strings.Contains(logged.String(), `"path":"`+path+`"`)
	})
	time.Sleep(100 * time.Millisecond)
	if calls() != 0 {
		t.Fatal("a call while the file does not exist")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, time.Second, "the poll", func() bool { return calls() == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := calls(); n != 1 {
		t.Fatalf("%d calls for an unchanged file, want 1", n)
	}
	later := time.Now().Add(time.Second)
	if err := os.WriteFile(path, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, time.Second, "the poll after a rewrite", func() bool { return calls() == 2 })
}
