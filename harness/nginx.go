package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cellbench/config"
)

// nginxConfig is the anchor: nginx as a plain keep-alive reverse proxy that
// routes the same keys to the same cells as the router config (a map of
// X-Routing-Key to an upstream per placement, the default placement for
// unknown keys), with the same number of workers, and an access log
// exactly when the routers get one. It says which placement served in
// X-Routed-To, as the routers do, so misrouting is checked alike. It has
// none of the contract's resilience (health checks, fallbacks, breakers,
// rate limits, retries): it is the floor of what a proxy costs, not a
// router.
func nginxConfig(dir, listen string, workers int, cfg *config.Config, accessLog bool) (string, error) {
	names := make([]string, 0, len(cfg.Placements))
	for name := range cfg.Placements {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes %d;\ndaemon off;\n", workers)
	if workers == 1 {
		// One process: its CPU time is the proxy's, as for the routers.
		b.WriteString("master_process off;\n")
	}
	fmt.Fprintf(&b, "pid %s;\nerror_log %s warn;\n", filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-error.log"))
	b.WriteString("events { worker_connections 16384; }\n")
	b.WriteString("http {\n")
	if accessLog {
		fmt.Fprintf(&b, "  access_log %s combined buffer=64k flush=100ms;\n", filepath.Join(dir, "nginx-access.log"))
	} else {
		b.WriteString("  access_log off;\n")
	}
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s;\n", t, filepath.Join(dir, "nginx-"+t))
	}
	b.WriteString("  keepalive_requests 1000000;\n  keepalive_timeout 75s;\n")
	for _, name := range names {
		u, err := url.Parse(cfg.Placements[name].Endpoint)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("placement %s: endpoint %q is not a URL with a host", name, cfg.Placements[name].Endpoint)
		}
		fmt.Fprintf(&b, "  upstream placement_%s { server %s; keepalive 512; keepalive_requests 1000000; }\n", name, u.Host)
	}
	fmt.Fprintf(&b, "  map $http_x_routing_key $placement {\n    default %s;\n", cfg.DefaultPlacement)
	keys := make([]string, 0, len(cfg.Routes))
	for k := range cfg.Routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "    %q %s;\n", k, cfg.Routes[k])
	}
	b.WriteString("  }\n")
	fmt.Fprintf(&b, `  server {
    listen %s;
    location / {
      proxy_pass http://placement_$placement;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      add_header X-Routed-To $placement always;
    }
  }
}
`, listen)
	return b.String(), nil
}

// nginxBinary is the nginx to use: --nginx, or the Debian package's.
func nginxBinary(flag string) string {
	if flag != "" {
		return flag
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
