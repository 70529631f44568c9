package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"cellbench/go-router/rawconn"
)

// upConn is one pooled upstream connection.
type upConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// serverProxy is floorproxy's proxying as an http.Handler for --server,
// with a plain stack of idle upstream connections.
type serverProxy struct {
	upstream string
	raw      bool
	mu       sync.Mutex
	idle     []*upConn
}

func (s *serverProxy) get() (*upConn, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		u := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return u, nil
	}
	s.mu.Unlock()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.upstream, "http://"))
	if err != nil {
		return nil, err
	}
	if s.raw {
		c = rawconn.Wrap(c)
	}
	return &upConn{c: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}, nil
}

func (s *serverProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	u, err := s.get()
	if err != nil {
		w.WriteHeader(502)
		return
	}
	u.bw.WriteString(req.Method + " " + req.RequestURI + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
	req.Header.Write(u.bw)
	u.bw.WriteString("\r\n")
	if err := u.bw.Flush(); err != nil {
		w.WriteHeader(502)
		return
	}
	resp, err := http.ReadResponse(u.br, req)
	if err != nil {
		w.WriteHeader(502)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 32<<10)
	io.CopyBuffer(w, resp.Body, buf)
	resp.Body.Close()
	s.mu.Lock()
	s.idle = append(s.idle, u)
	s.mu.Unlock()
}
