// Command floorproxy is the least a Go HTTP/1.1 proxy can do per request,
// the floor under go-router in the latency measurement: one goroutine per
// client connection with its own upstream connection, net/http's request
// and response parsers, no features, no error handling worth the name.
// --server puts the same proxying behind net/http.Server instead, which
// isolates what http.Server itself costs; --raw=false goes back to the net
// package's own socket I/O (see go-router/rawconn).
//
//	go run ./go-router/bench/latency --bare "$(go env GOPATH)/bin/floorproxy"
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"

	"cellbench/go-router/rawconn"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "listen address")
	upstream := flag.String("upstream", "", "upstream host:port")
	raw := flag.Bool("raw", true, "socket I/O through go-router/rawconn")
	server := flag.Bool("server", false, "serve through net/http.Server")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *server {
		if *raw {
			ln = rawconn.Listener{Listener: ln}
		}
		log.Fatal(http.Serve(ln, &serverProxy{upstream: *upstream, raw: *raw}))
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		if *raw {
			c = rawconn.Wrap(c)
		}
		go serve(c, *upstream, *raw)
	}
}

func serve(c net.Conn, upstream string, raw bool) {
	defer c.Close()
	br, bw := bufio.NewReaderSize(c, 4096), bufio.NewWriterSize(c, 4096)
	u, err := net.Dial("tcp", strings.TrimPrefix(upstream, "http://"))
	if err != nil {
		return
	}
	if raw {
		u = rawconn.Wrap(u)
	}
	defer u.Close()
	ubr, ubw := bufio.NewReaderSize(u, 4096), bufio.NewWriterSize(u, 4096)
	buf := make([]byte, 32<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		ubw.WriteString(req.Method + " " + req.RequestURI + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
		req.Header.Write(ubw)
		ubw.WriteString("\r\n")
		if err := ubw.Flush(); err != nil {
			return
		}
		resp, err := http.ReadResponse(ubr, req)
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode) + "\r\n")
		resp.Header.Write(bw)
		bw.WriteString("\r\n")
		if _, err := io.CopyBuffer(bw, resp.Body, buf); err != nil {
			return
		}
		resp.Body.Close()
		if err := bw.Flush(); err != nil {
			return
		}
	}
}
