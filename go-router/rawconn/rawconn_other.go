//go:build !linux

package rawconn

import "net"

// Wrap returns c unchanged: the RawSyscall path is written for Linux.
func Wrap(c net.Conn) net.Conn { return c }
