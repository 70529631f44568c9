// Package rawconn gives go-router TCP connections whose reads and writes
// do not tell the Go scheduler that a system call is under way.
//
// Go's net package enters every read(2) and write(2) through
// syscall.Syscall, which brackets the call with entersyscall/exitsyscall.
// That bracket exists for calls that may block; on a non-blocking socket
// they never do, but the bracket still costs: the first one after an idle
// spell wakes the sysmon thread from its deep sleep, and a loopback write
// that spends a sysmon tick (20 µs) in the kernel has its P retaken and
// handed to a second thread, which spins and parks again. With the router
// on one core and one request in flight that meant about 6 context
// switches per request where nginx has 2, and most of the latency the
// router added over nginx (go-router/README.md has the measurements).
//
// Conn keeps the netpoller for waiting (through syscall.RawConn, so
// deadlines and Close behave as on a *net.TCPConn) and issues the read and
// write themselves with syscall.RawSyscall. Only the socket I/O of proxied
// traffic goes this way; everything else in the process is untouched.
// On systems other than Linux, Wrap returns the connection as it is.
package rawconn
