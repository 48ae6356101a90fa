package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// maxBodyScan is how much of a response body is read to look for
// ExpectBody; the rest is discarded with the connection.
const maxBodyScan = 64 << 10

// userAgent identifies health checks in backend logs.
const userAgent = "tiergate-health"

// HTTPProbe sends one HTTP request per check to one address and passes when
// the status is in the expected ranges and, if configured, the body contains
// the expected text.
//
// Every check uses a fresh connection (Connection: close), so a stale
// keep-alive connection can never turn into a false failure, and the
// underlying fasthttp.HostClient keeps no idle connections and starts no
// background goroutines. Requests are never retried: one failed request is
// one failed check.
type HTTPProbe struct {
	client *fasthttp.HostClient
	method string
	path   string
	host   string
	expect StatusRanges
	body   []byte
	// timeout is used when Check's ctx has no deadline.
	timeout time.Duration
}

var _ Probe = (*HTTPProbe)(nil)

// NewHTTPProbe returns a probe of addr (host:port) configured by cfg; zero
// fields of cfg take their defaults.
func NewHTTPProbe(addr string, cfg ActiveConfig) (*HTTPProbe, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("health: http probe: %w", err)
	}
	expect, err := ParseStatusRanges(cfg.ExpectStatus)
	if err != nil {
		return nil, fmt.Errorf("health: http probe: %w", err)
	}
	host := cfg.Host
	if host == "" {
		host = addr
	}
	p := &HTTPProbe{
		method:  cfg.Method,
		path:    cfg.Path,
		host:    host,
		expect:  expect,
		timeout: cfg.Timeout,
	}
	if cfg.ExpectBody != "" {
		p.body = []byte(cfg.ExpectBody)
	}
	p.client = &fasthttp.HostClient{
		Addr:                          addr,
		Name:                          userAgent,
		DialTimeout:                   dialTCP,
		MaxConns:                      2,
		MaxIdemponentCallAttempts:     1,
		RetryIf:                       func(*fasthttp.Request) bool { return false },
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	return p, nil
}

// HTTPProbes returns a ProbeFactory making an HTTPProbe per target with cfg.
// It fails when cfg is invalid, so a bad config is reported once, up front.
func HTTPProbes(cfg ActiveConfig) (ProbeFactory, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("health: http probe: %w", err)
	}
	return func(t Target) (Probe, error) { return NewHTTPProbe(t.Address, cfg) }, nil
}

// dialTCP dials with a plain net.Dialer: no shared DNS cache and no
// package-level goroutine, and DNS is re-resolved on every check.
func dialTCP(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

// Check sends the request and judges the answer. The deadline is ctx's (or
// the configured timeout when ctx has none); a cancelled ctx is noticed
// before the request starts, not during it.
func (p *HTTPProbe) Check(ctx context.Context) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.timeout)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	req.Header.SetMethod(p.method)
	req.SetRequestURI(p.path)
	req.Header.SetHost(p.host)
	req.Header.SetConnectionClose()
	req.Header.SetUserAgent(userAgent)

	if err := p.client.DoDeadline(req, resp, deadline); err != nil {
		return Result{}, classify(err)
	}
	defer func() { _ = resp.CloseBodyStream() }()

	code := resp.StatusCode()
	if !p.expect.Contains(code) {
		return Result{}, fmt.Errorf("%w: HTTP %d, want %s", ErrUnexpectedStatus, code, p.expect)
	}
	if p.body != nil {
		body, err := readPrefix(resp, maxBodyScan)
		if err != nil {
			return Result{}, classify(fmt.Errorf("read body: %w", err))
		}
		if !bytes.Contains(body, p.body) {
			return Result{}, fmt.Errorf("%w: %q not in the first %d bytes", ErrBodyMismatch, p.body, len(body))
		}
	}
	return Result{Detail: "HTTP " + strconv.Itoa(code)}, nil
}

// readPrefix returns up to limit bytes of the body, streamed or not.
func readPrefix(resp *fasthttp.Response, limit int64) ([]byte, error) {
	r := resp.BodyStream()
	if r == nil {
		b := resp.Body()
		return b[:min(int64(len(b)), limit)], nil
	}
	return io.ReadAll(io.LimitReader(r, limit))
}

// classify wraps err with ErrTimeout or ErrConnect when it is one of those.
func classify(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case isConnectError(err):
		return fmt.Errorf("%w: %w", ErrConnect, err)
	}
	return err
}

func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}
