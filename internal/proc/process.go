// Package proc supervises the child processes of the harness and of the
// process-level tests (parity, control-plane end to end, mock cells): start
// one, optionally under a CPU list, wait for its ready line or its health
// URL, stop it with a grace period, and read its CPU, memory and descriptor
// figures from /proc.
package proc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Spec is what to start.
type Spec struct {
	Name string   // for messages; default: the base name of Path
	Path string   // the binary
	Args []string // its arguments
	Env  []string // added to this process's environment
	Dir  string   // working directory; empty: this process's
	// CPUs runs the child under taskset on this CPU list ("1", "0,2-3");
	// empty: wherever the kernel puts it.
	CPUs string
	// Stdout and Stderr get a copy of what the child writes; nil discards it
	// (the last stderrTail bytes are kept either way, for messages).
	Stdout, Stderr io.Writer
	// Ready tells the child's ready line among its stdout lines; WaitReady
	// returns the first line it accepts. nil: the child has none.
	Ready func(line string) bool
}

// Bounds of the supervision itself.
const (
	stderrTail = 2 << 10         // bytes of stderr kept for messages
	maxLine    = 1 << 20         // a longer stdout line is cut (never a ready line)
	killWait   = 5 * time.Second // SIGKILL → exit
	ioWait     = 2 * time.Second // exit → stdout and stderr drained, if a descendant holds them open
	pollEvery  = 20 * time.Millisecond
)

// Process is one running (or exited) child. Every child gets SIGKILL when
// the thread that started it dies (Pdeathsig), so none outlives a killed
// harness or test binary.
type Process struct {
	name  string
	cmd   *exec.Cmd
	tail  *tailBuffer
	done  chan struct{}
	err   error // cmd.Wait's, set before done closes
	ready chan struct{}
	line  string // the ready line, set before ready closes
}

// Start starts spec's child. Its stdout and stderr are read until it exits.
func Start(spec Spec) (*Process, error) {
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	p := &Process{name: name, tail: &tailBuffer{}, done: make(chan struct{}), ready: make(chan struct{})}
	path, args := spec.Path, spec.Args
	if spec.CPUs != "" {
		path, args = "taskset", append([]string{"-c", spec.CPUs, spec.Path}, spec.Args...)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Dir = spec.Dir
	if len(spec.Env) > 0 {
		p.cmd.Env = append(os.Environ(), spec.Env...)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stdout = &lineWriter{copy: spec.Stdout, ready: spec.Ready, found: p.readyLine}
	p.cmd.Stderr = p.tail
	if spec.Stderr != nil {
		p.cmd.Stderr = io.MultiWriter(p.tail, spec.Stderr)
	}
	p.cmd.WaitDelay = ioWait
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		// Wait returns once the child has exited and its output is copied,
		// so everything it wrote is seen before Done.
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *Process) readyLine(line string) {
	p.line = line
	close(p.ready)
}

// Name is the name messages give the process.
func (p *Process) Name() string { return p.name }

// PID is the child's process id (taskset's exec keeps it).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited and its output has been read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether Done is closed.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the child ended (nil: exit status 0); valid once Done is closed.
func (p *Process) Err() error { return p.err }

// State is the child's exit state; valid once Done is closed.
func (p *Process) State() *os.ProcessState { return p.cmd.ProcessState }

// StderrTail is the end of what the child wrote to stderr, for messages.
func (p *Process) StderrTail() string { return p.tail.String() }

// Signal sends sig to a child that has not exited.
func (p *Process) Signal(sig os.Signal) {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// WaitExit waits up to d for the child to exit and returns its exit code
// (-1 when a signal killed it); ok is false when it is still running.
func (p *Process) WaitExit(d time.Duration) (code int, ok bool) {
	if !p.Exited() {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			return 0, false
		}
	}
	return p.cmd.ProcessState.ExitCode(), true
}

// Stop sends SIGTERM, and SIGKILL if the child is still running after
// grace; the error says it survived even that.
func (p *Process) Stop(grace time.Duration) error {
	if p == nil || p.Exited() {
		return nil
	}
	p.Signal(syscall.SIGTERM)
	if _, ok := p.WaitExit(grace); ok {
		return nil
	}
	return p.Kill()
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() error {
	if p == nil || p.Exited() {
		return nil
	}
	p.Signal(syscall.SIGKILL)
	if _, ok := p.WaitExit(killWait); !ok {
		return fmt.Errorf("%s (pid %d) survived SIGKILL for %v", p.name, p.PID(), killWait)
	}
	return nil
}

// WaitReady waits up to timeout for the child's ready line (Spec.Ready) and
// returns it. The error says why there is none: no ready line in the spec,
// an exit before it, or the timeout; it carries the stderr tail.
func (p *Process) WaitReady(timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.ready:
		return p.line, nil
	case <-p.done:
		select {
		case <-p.ready: // written just before the exit
			return p.line, nil
		default:
		}
		return "", fmt.Errorf("%s exited before its ready line (%v): %s", p.name, p.err, p.StderrTail())
	case <-timer.C:
		return "", fmt.Errorf("%s: no ready line within %v: %s", p.name, timeout, p.StderrTail())
	}
}

// lineWriter is the child's stdout: a copy for Spec.Stdout, and lines
// split for the ready line until it has been found. exec calls Write from
// one goroutine.
type lineWriter struct {
	copy    io.Writer
	ready   func(string) bool
	found   func(string)
	partial []byte
	done    bool
}

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	if w.copy != nil {
		// A failing copy must not stop the child's output from draining.
		_, _ = w.copy.Write(b)
	}
	for !w.done && w.ready != nil && len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.partial = append(w.partial, b[:min(len(b), maxLine-len(w.partial))]...)
			break
		}
		line := string(append(w.partial, b[:min(i, maxLine-len(w.partial))]...))
		w.partial, b = w.partial[:0], b[i+1:]
		if w.ready(line) {
			w.done = true
			w.partial = nil
			w.found(line)
		}
	}
	return n, nil
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
