package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// HTTP systems under test. Each listens on its own free 127.0.0.1 port
// with a config file the harness writes into its temp dir; the Debian
// system services (if any run) are never involved.
const (
	sysDirect      = "direct"
	sysPassthrough = "passthrough"
	sysEdge        = "edge"
	sysHAProxy     = "haproxy"
	sysNginx       = "nginx"
)

// httpSystem is one started system.
type httpSystem struct {
	name string
	addr string // where clients send requests
	proc *proc  // nil for direct
}

// edgeOptions are the knobs the edge scenarios turn.
type edgeOptions struct {
	Policy       string // balancer policy; default round_robin
	HashKey      string // consistent_hash key
	Expr         string // route expression (adds an expression route)
	Rewrite      bool   // request and response header rewrite route
	AccessLog    bool   // access log on, to a file
	IdleTimeout  string // client keep-alive idle timeout, e.g. "300s"
	ReduceMemory bool   // listeners' reduce_memory_usage
	// Cache puts a response cache in front of the backends: the edge's
	// route cache, HAProxy's cache section, nginx's proxy_cache (all
	// 64 MiB, objects up to 1 MiB).
	Cache bool

	AccessLogPath string // set by the harness
}

// startBackends starts n hello backends, each its own process.
func (h *harness) startBackends(ctx context.Context, n int) ([]string, error) {
	var addrs []string
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := h.procs.start(fmt.Sprintf("hello%d", i+1), []string{h.self, "-hello", addr}, procOpts{})
		if err != nil {
			return nil, err
		}
		if err := waitFor(ctx, p, 10*time.Second, httpCheck(addr, "/healthz")); err != nil {
			return nil, fmt.Errorf("hello backend: %w", err)
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// startHTTPSystem starts a system of the given kind (sysEdge, sysHAProxy,
// ...) in front of backends; label names it in results and logs.
func (h *harness) startHTTPSystem(ctx context.Context, kind, label string, backends []string, eo edgeOptions) (*httpSystem, error) {
	name := kind
	if kind == sysDirect {
		return &httpSystem{name: label, addr: backends[0]}, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &httpSystem{name: label, addr: addr}
	dir := filepath.Join(h.tmp, name+"-"+filepath.Base(addr))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var argv []string
	ready := httpCheck(addr, "/")
	switch name {
	case sysPassthrough:
		argv = []string{h.self, "-passthrough", addr, "-upstreams", strings.Join(backends, ",")}
	case sysEdge:
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		eo.AccessLogPath = filepath.Join(dir, "access.log")
		cfg, err := edgeConfig(addr, admin, backends, eo)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "edge.yaml")
		if err := os.WriteFile(path, cfg, 0o644); err != nil {
			return nil, err
		}
		argv = []string{h.bins[sysEdge], "-config", path}
		// Ready once the health checks have passed (initial state is
		// unhealthy) and a request goes through.
		ready = both(httpCheck(admin, "/readyz"), httpCheck(addr, "/"))
	case sysHAProxy:
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, haproxyConfig(addr, backends, h.haproxyMaxConn(), eo.Cache), 0o644); err != nil {
			return nil, err
		}
		argv = []string{"haproxy", "-db", "-f", path}
	case sysNginx:
		conf, err := nginxConfig(dir, addr, backends, os.Geteuid() == 0, h.fdLimit, eo.Cache)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			return nil, err
		}
		argv = []string{"nginx", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}
	default:
		return nil, fmt.Errorf("unknown system %q", name)
	}
	p, err := h.procs.start(name+"-"+filepath.Base(dir), argv, procOpts{})
	if err != nil {
		return nil, err
	}
	s.proc = p
	if err := waitFor(ctx, p, 20*time.Second, ready); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("%s did not become ready: %w", label, err)
	}
	return s, nil
}

// stop ends the system's processes.
func (s *httpSystem) stop() {
	if s != nil && s.proc != nil {
		s.proc.stop(5 * time.Second)
	}
}

// edgeTmpl is the tiergate edge config: round_robin over the backends,
// active health checks every 2s, metrics on the admin listener (always on),
// access log off unless asked.
var edgeTmpl = template.Must(template.New("edge").Parse(`# written by tiergate bench
log: {level: warn, format: json}
admin: {listen: "{{.Admin}}"}
drain_timeout: 2s
access_log:
  enabled: {{.O.AccessLog}}
  output: "{{.O.AccessLogPath}}"
listeners:
  - name: bench
    address: "{{.Listen}}"
    idle_timeout: {{.O.IdleTimeout}}
    reduce_memory_usage: {{.O.ReduceMemory}}
upstreams:
  - name: web
    backends:
{{- range .Backends}}
      - address: "{{.}}"
{{- end}}
    balancer:
      policy: {{.O.Policy}}
{{- if .O.HashKey}}
      hash_key: "{{.O.HashKey}}"
{{- end}}
    health:
      active:
        path: /healthz
        interval: 2s
{{- if .O.Expr}}
routes:
  - name: expr
    match:
      expr: '{{.O.Expr}}'
    upstream: web
{{- else if .O.Rewrite}}
routes:
  - name: rewrite
    upstream: web
    request_headers:
      set: {X-Env: bench, X-Request-Source: edge}
      remove: [X-Debug]
    response_headers:
      set: {X-Served-By: tiergate, Strict-Transport-Security: "max-age=31536000"}
{{- else if .O.Cache}}
routes:
  - name: cached
    upstream: web
    cache:
      enabled: true
      max_size: 64MiB
      max_object_size: 1MiB
{{- end}}
`))

// edgeTemplateData feeds edgeTmpl.
type edgeTemplateData struct {
	Listen, Admin string
	Backends      []string
	O             edgeOptions
}

func edgeConfig(listen, admin string, backends []string, eo edgeOptions) ([]byte, error) {
	if eo.Policy == "" {
		eo.Policy = "round_robin"
	}
	if eo.IdleTimeout == "" {
		eo.IdleTimeout = "300s"
	}
	var b bytes.Buffer
	err := edgeTmpl.Execute(&b, edgeTemplateData{Listen: listen, Admin: admin, Backends: backends, O: eo})
	return b.Bytes(), err
}

// haproxyConfig: 2 threads, round robin, connection reuse always, health
// checks like the edge's; with cache, a 64 MiB cache (objects up to 1 MiB,
// kept at most an hour) used and filled by the backend.
func haproxyConfig(listen string, backends []string, maxconn int, cache bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# written by tiergate bench
global
    nbthread 2
    maxconn %[2]d

defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 30s
    timeout http-keep-alive 300s
    http-reuse always

frontend bench
    bind %[1]s
    maxconn %[2]d
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /healthz
`, listen, maxconn)
	if cache {
		b.WriteString("    http-request cache-use objects\n    http-response cache-store objects\n")
	}
	for i, be := range backends {
		fmt.Fprintf(&b, "    server b%d %s check inter 2s\n", i+1, be)
	}
	if cache {
		b.WriteString(`
cache objects
    total-max-size 64
    max-object-size 1048576
    max-age 3600
`)
	}
	return b.Bytes()
}

// nginxConfig: 2 workers, upstream keep-alive (HTTP/1.1, Connection ""),
// everything it writes under dir; with cache, proxy_cache in a 64 MiB
// cache under dir (keys in a shared-memory zone, bodies in files, the
// page cache holding them), one origin fetch per key (proxy_cache_lock),
// and open_file_cache so a hit does not open the entry's file again.
func nginxConfig(dir, listen string, backends []string, root bool, fdLimit int, cache bool) ([]byte, error) {
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.WriteString("# written by tiergate bench\n")
	if root {
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile %[2]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
    worker_connections %[3]d;
}

http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
`, dir, fdLimit, max(fdLimit-100, 1024))
	cacheDirectives := ""
	if cache {
		fmt.Fprintf(&b, "    proxy_cache_path %s/cache levels=1:2 keys_zone=objects:10m max_size=64m inactive=60m use_temp_path=off;\n", dir)
		// A hit opens the entry's file; keep the descriptors open, as a
		// tuned cache server does (10-58% more hits in a quick check here).
		b.WriteString("    open_file_cache max=10000 inactive=60s;\n    open_file_cache_valid 60s;\n")
		cacheDirectives = `
            proxy_cache objects;
            proxy_cache_lock on;`
	}
	b.WriteString(`
    upstream web {
`)
	for _, be := range backends {
		fmt.Fprintf(&b, "        server %s;\n", be)
	}
	fmt.Fprintf(&b, `        keepalive 64;
        keepalive_requests 10000000;
    }

    server {
        listen %s;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";%s
        }
    }
}
`, listen, cacheDirectives)
	return b.Bytes(), nil
}

// httpCheck succeeds when GET path on addr answers 200.
func httpCheck(addr, path string) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
}

func both(a, b func() error) func() error {
	return func() error {
		if err := a(); err != nil {
			return err
		}
		return b()
	}
}
