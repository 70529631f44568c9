package testkit

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Serve is a raw TCP server for the test: it listens on a fresh 127.0.0.1
// port and runs serve on each accepted connection in a goroutine of its
// own, closing the connection when serve returns. The listener and every
// connection still open are closed when the test ends. It returns the
// listening address.
func Serve(t testing.TB, serve func(conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("raw server: %v", err)
	}
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[conn] = true
			mu.Unlock()
			go func() {
				defer func() {
					conn.Close()
					mu.Lock()
					delete(open, conn)
					mu.Unlock()
				}()
				serve(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// ServeRequests is Serve for an HTTP/1 upstream written by the test: on
// each connection it reads requests one after another and hands each, its
// head read, to answer, which writes the response to conn itself and says
// whether to read the next one.
func ServeRequests(t testing.TB, answer func(req *http.Request, conn net.Conn, br *bufio.Reader) bool) string {
	t.Helper()
	return Serve(t, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil || !answer(req, conn, br) {
				return
			}
		}
	})
}
