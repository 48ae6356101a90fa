package httpproxy

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/tiergate/tiergate/router/httproute"
)

// stripHopByHop removes the fixed hop-by-hop headers and every header the
// Connection field names, before the edge adds any of its own.
func stripRequestHopByHop(h *fasthttp.RequestHeader, scratch []string) []string {
	scratch = scratch[:0]
	for _, line := range h.PeekAll("Connection") {
		scratch = httproute.AppendHeadersToStrip(scratch, line)
	}
	if len(scratch) == 0 {
		scratch = httproute.AppendHeadersToStrip(scratch, nil)
	}
	for _, name := range scratch {
		h.Del(name)
	}
	// fasthttp keeps "Connection: close" as a flag, not a header line.
	h.ResetConnectionClose()
	return scratch
}

func stripResponseHopByHop(h *fasthttp.ResponseHeader, scratch []string) []string {
	scratch = scratch[:0]
	for _, line := range h.PeekAll("Connection") {
		scratch = httproute.AppendHeadersToStrip(scratch, line)
	}
	if len(scratch) == 0 {
		scratch = httproute.AppendHeadersToStrip(scratch, nil)
	}
	for _, name := range scratch {
		if name == "Transfer-Encoding" {
			continue // framing is the server's business; it re-frames the body
		}
		h.Del(name)
	}
	h.ResetConnectionClose()
	return scratch
}

// setForwarded writes X-Forwarded-For/-Proto/-Host. Inbound values are kept
// only from trusted peers; from anyone else they are replaced.
func setForwarded(h *fasthttp.RequestHeader, trusted httproute.TrustedProxies, peer netip.Addr, tls bool, buf []byte) []byte {
	isTrusted := trusted.Contains(peer)
	buf = trusted.AppendXFF(buf[:0], peer, h.PeekAll("X-Forwarded-For"))
	h.Del("X-Forwarded-For") // every inbound line: the upstream gets one
	h.SetBytesV("X-Forwarded-For", buf)
	if !isTrusted || len(h.Peek("X-Forwarded-Proto")) == 0 {
		if tls {
			h.Set("X-Forwarded-Proto", "https")
		} else {
			h.Set("X-Forwarded-Proto", "http")
		}
	}
	if !isTrusted || len(h.Peek("X-Forwarded-Host")) == 0 {
		h.SetBytesV("X-Forwarded-Host", h.Host())
	}
	if !isTrusted {
		h.Del("Forwarded")
	}
	return buf
}

// ensureRequestID adds X-Request-Id (16 hex digits) when the client sent none.
func ensureRequestID(h *fasthttp.RequestHeader, buf []byte) []byte {
	if len(h.Peek("X-Request-Id")) > 0 {
		return buf
	}
	const hexdig = "0123456789abcdef"
	v := rand.Uint64()
	buf = buf[:0]
	for i := 60; i >= 0; i -= 4 {
		buf = append(buf, hexdig[(v>>uint(i))&0xf])
	}
	h.SetBytesV("X-Request-Id", buf)
	return buf
}

// checkRequestFraming rejects requests whose raw head carries ambiguous
// Content-Length/Transfer-Encoding (request smuggling).
func checkRequestFraming(h *fasthttp.RequestHeader, cl, te [][]byte) ([][]byte, [][]byte, error) {
	cl, te = cl[:0], te[:0]
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimRight(line, "\r")
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, value := line[:colon], line[colon+1:]
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = append(cl, value)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = append(te, value)
		}
	}
	if len(cl) == 0 && len(te) == 0 {
		return cl, te, nil
	}
	_, err := httproute.CheckFraming(cl, te)
	return cl, te, err
}

// isIdempotent reports methods RFC 9110 calls idempotent.
func isIdempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(tcp.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
