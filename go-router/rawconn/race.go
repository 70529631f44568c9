//go:build race

package rawconn

import "syscall"

// Under the race detector, syscall.Write releases and syscall.Read acquires
// one package-private sync object, so that bytes sent over a socket to
// another goroutine of the same process count as synchronisation, whether
// either end uses this package or the net package. RawSyscall carries no
// such annotation, so race builds make a zero-length call through the
// syscall package for its side effect: it transfers no data.
func raceReleaseMerge(fd uintptr) { _, _ = syscall.Write(int(fd), nil) }
func raceAcquire(fd uintptr)      { _, _ = syscall.Read(int(fd), nil) }
