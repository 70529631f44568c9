// Command bareproxy is the reference point of the latency measurement: a
// plain httputil.ReverseProxy to one upstream with none of go-router's
// features, so that the report can separate net/http's own cost from what
// go-router adds on top of it.
//
//	bareproxy --listen 127.0.0.1:8090 --upstream http://127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:9001", "upstream base URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true},
	}
	log.Fatal(http.ListenAndServe(*listen, proxy))
}
