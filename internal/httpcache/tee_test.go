package httpcache

import (
	"errors"
	"io"
	"strings"
	"testing"
)

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// errAfter yields n bytes of s then fails.
type errAfter struct {
	r io.Reader
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestTee(t *testing.T) {
	body := strings.Repeat("abcdefgh", 1000) // 8000 bytes
	tests := []struct {
		name    string
		cfg     Config
		hdr     []string
		src     func() io.Reader
		readAll bool
		stored  bool
	}{
		{"complete", Config{}, []string{"Cache-Control: max-age=60"}, func() io.Reader { return strings.NewReader(body) }, true, true},
		{"client went away", Config{}, []string{"Cache-Control: max-age=60"}, func() io.Reader { return strings.NewReader(body) }, false, false},
		{"origin broke off", Config{}, []string{"Cache-Control: max-age=60"}, func() io.Reader { return &errAfter{strings.NewReader(body[:100])} }, true, false},
		{"over the limit", Config{MaxObjectSize: 4000}, []string{"Cache-Control: max-age=60"}, func() io.Reader { return strings.NewReader(body) }, true, false},
		{"uncacheable head", Config{}, []string{"Cache-Control: no-store"}, func() io.Reader { return strings.NewReader(body) }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, tt.cfg)
			req := request(t, "GET", "http://example.com/big")
			res := c.Lookup(req)
			defer res.Release()
			if !res.Leader() {
				t.Fatal("not leading")
			}
			// A chunked (unknown length) response head.
			resp := response(t, clk.Now(), 200, "", tt.hdr...)
			resp.Header.SetContentLength(-1)
			src := &closeRecorder{Reader: tt.src()}
			rc := c.Tee(&res, req, &resp.Header, src)
			if res.Leader() {
				t.Fatal("the lead did not move to the reader")
			}
			var got []byte
			if tt.readAll {
				got, _ = io.ReadAll(rc)
			} else {
				buf := make([]byte, 100)
				n, _ := rc.Read(buf)
				got = buf[:n]
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			if !src.closed {
				t.Fatal("source not closed")
			}
			if tt.readAll && tt.name != "origin broke off" && string(got) != body {
				t.Fatalf("passed through %d bytes, want %d", len(got), len(body))
			}
			if _, ok := c.flights.m.Load(res.key); ok {
				t.Fatal("fetch still open after Close")
			}
			after := c.Lookup(request(t, "GET", "http://example.com/big"))
			defer after.Release()
			if (after.Status == Hit) != tt.stored {
				t.Fatalf("status after tee %v, want stored=%v", after.Status, tt.stored)
			}
			if tt.stored && string(after.Entry.Body()) != body {
				t.Fatal("stored body differs")
			}
		})
	}
}

func TestTeeDeclaredLength(t *testing.T) {
	c, clk := newCache(t, Config{MaxObjectSize: 100})
	req := request(t, "GET", "http://example.com/cl")
	res := c.Lookup(req)
	defer res.Release()
	resp := response(t, clk.Now(), 200, strings.Repeat("z", 200), "Cache-Control: max-age=60")
	if c.Storable(&res, &resp.Header) {
		t.Fatal("Storable with Content-Length over max_object_size")
	}
	rc := c.Tee(&res, req, &resp.Header, strings.NewReader(string(resp.Body())))
	if res.Leader() {
		t.Fatal("fetch not ended for an unstorable head")
	}
	if b, _ := io.ReadAll(rc); len(b) != 200 {
		t.Fatalf("passed %d bytes", len(b))
	}
	_ = rc.Close()
}
