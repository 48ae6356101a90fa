package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/balancer"
	"github.com/tiergate/tiergate/router/httproute"
)

// tunnel handles an Upgrade request (WebSocket and the like): it connects to
// a backend, sends the request head, and if the backend answers 101 splices
// the two connections until either side closes. Any other answer is relayed
// as a normal response.
func (e *Engine) tunnel(ctx *fasthttp.RequestCtx, g *generation, route *httproute.Route, up *upstream, peer netip.Addr, st *reqState, start time.Time) {
	var key []byte
	if up.hasHash {
		key = hashKey(nil, up.hashKey, ctx, peer)
	}
	pr, err := up.bal.Pick(balancer.PickInfo{Key: key})
	if err != nil {
		e.fail(ctx, g, route, up, fasthttp.StatusServiceUnavailable, reasonNoBackend, start, 0)
		return
	}
	be := up.backendOf(pr.Backend)
	conn, err := net.DialTimeout("tcp", be.b.Address, up.cfg.ConnectTimeout)
	if err != nil {
		pr.Done(err, 0)
		e.passive(up, be, 0, &DialError{Err: err})
		e.fail(ctx, g, route, up, fasthttp.StatusBadGateway, reasonConnect, start, 0)
		return
	}

	// The head goes out as received, minus the hop-by-hop headers other
	// than Connection/Upgrade, plus forwarding headers.
	var h fasthttp.RequestHeader
	ctx.Request.Header.CopyTo(&h)
	for _, name := range []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer"} {
		h.Del(name)
	}
	st.buf = setForwarded(&h, g.trusted, peer, ctx.IsTLS(), st.buf)
	st.idBuf = ensureRequestID(&h, st.idBuf)
	route.Action.RequestHeaders.Apply(&h)
	head := append([]byte(nil), h.Header()...)
	body := append([]byte(nil), ctx.Request.Body()...)

	_ = conn.SetDeadline(time.Now().Add(up.cfg.ResponseTimeout))
	if _, err := conn.Write(append(head, body...)); err != nil {
		_ = conn.Close()
		pr.Done(err, 0)
		e.fail(ctx, g, route, up, fasthttp.StatusBadGateway, reasonBackendErr, start, 0)
		return
	}
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	resp.SkipBody = true
	if err := resp.Header.Read(br); err != nil {
		_ = conn.Close()
		pr.Done(err, 0)
		e.failErr(ctx, g, route, up, err, start, 0)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// Not upgraded: relay the answer (bounded) and close.
		resp.SkipBody = false
		if err := resp.ReadBody(br, 1<<20); err != nil {
			_ = conn.Close()
			pr.Done(err, 0)
			e.fail(ctx, g, route, up, fasthttp.StatusBadGateway, reasonBadResponse, start, 0)
			return
		}
		_ = conn.Close()
		resp.CopyTo(&ctx.Response)
		ctx.SetConnectionClose()
		pr.Done(nil, time.Since(start))
		e.logAccess(ctx, g, route, up, be, start, 0, reasonNone)
		return
	}
	respHead := append([]byte(nil), resp.Header.Header()...)
	buffered, _ := br.Peek(br.Buffered())
	pending := append([]byte(nil), buffered...)
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	e.logAccess(ctx, g, route, up, be, start, 0, reasonNone)
	ctx.HijackSetNoResponse(true)
	log := e.log
	ctx.Hijack(func(client net.Conn) {
		defer pr.Done(nil, 0)
		defer conn.Close()
		if _, err := client.Write(respHead); err != nil {
			return
		}
		if len(pending) > 0 {
			if _, err := client.Write(pending); err != nil {
				return
			}
		}
		splice(client, conn, log)
	})
}

// splice copies both ways until one side is done, then closes both.
func splice(a, b net.Conn, log *zap.Logger) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err != nil && !isClosedErr(err) {
			if ce := log.Check(zap.DebugLevel, "tunnel copy"); ce != nil {
				ce.Write(zap.Error(err))
			}
		}
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	// One side finished; give the other a moment to flush its half-close,
	// then tear both down. Both goroutines have returned when splice does.
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		_ = a.Close()
		_ = b.Close()
		<-done
	}
	_ = a.Close()
	_ = b.Close()
}

func isClosedErr(err error) bool {
	return bytes.Contains([]byte(err.Error()), []byte("use of closed network connection"))
}
