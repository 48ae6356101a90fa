package httproute

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// fuzzReq turns fuzz bytes into a request: target is split at the first
// '?', headers is "Name: value" lines separated by '\n' (a Cookie line also
// fills cookies).
func fuzzReq(method, host, target, headers []byte) *testReq {
	r := &testReq{method: method, host: host, path: target, ip: netip.MustParseAddr("192.0.2.10")}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		r.path, r.query = target[:i], target[i+1:]
	}
	for _, line := range bytes.Split(headers, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		r.headers = append(r.headers, [2][]byte{name, value})
		if string(name) == "Cookie" {
			for _, c := range bytes.Split(value, []byte(";")) {
				k, v, _ := bytes.Cut(bytes.TrimSpace(c), []byte("="))
				r.cookies = append(r.cookies, [2][]byte{k, v})
			}
		}
	}
	return r
}

// slowMatch is the reference: try every entry in evaluation order with a
// straightforward host check, without the exact-host index.
func slowMatch(t *Table, r Request) *Route {
	h := stripPort(r.Host())
	if n := len(h); n > 1 && h[n-1] == '.' {
		h = h[:n-1]
	}
	host := strings.ToLower(string(h))
	for _, e := range t.entries {
		switch e.host.kind {
		case hostExact:
			if len(host) > maxHostLen || host != e.host.host {
				continue
			}
		case hostWildcard:
			if len(host) > maxHostLen || len(host) <= len(e.host.host) || !strings.HasSuffix(host, e.host.host) {
				continue
			}
		}
		if !e.m.matchStatic(r) {
			continue
		}
		if p := e.m.expr; p != nil {
			st := &exprState{}
			filled := 0
			st.prepare(r, []byte(host), p.uses, &filled)
			if !p.eval(st) {
				continue
			}
		}
		return e.route
	}
	return nil
}

func FuzzMatch(f *testing.F) {
	tbl := compileYAML(f, fixture20)
	f.Add([]byte("GET"), []byte("api.example.com"), []byte("/v1/users/42"), []byte("X-Canary: 1"))
	f.Add([]byte("GET"), []byte("WWW.example.com:80"), []byte("/app/x?y=1"), []byte("Cookie: beta=1"))
	f.Add([]byte("POST"), []byte(""), []byte("/graphql"), []byte(""))
	f.Add([]byte("GET"), []byte("a.tenant.example.com."), []byte("//x/../y"), []byte("User-Agent: android"))
	f.Add([]byte("get"), []byte("[::1]:80"), []byte("*"), []byte("Authorization:\nX-Canary: 1"))
	f.Fuzz(func(t *testing.T, method, host, target, headers []byte) {
		r := fuzzReq(method, host, target, headers)
		first, ok := tbl.Match(r)
		if ok != (first != nil) {
			t.Fatalf("ok %v with route %v", ok, first)
		}
		if again, _ := tbl.Match(r); again != first {
			t.Fatalf("not deterministic: %v then %v", first, again)
		}
		if ref := slowMatch(tbl, r); ref != first {
			t.Fatalf("Match = %v, reference = %v", name(first), name(ref))
		}
		if first != nil && first.Action.Kind == ActionRedirect {
			loc := first.Action.Redirect.AppendLocation(nil, r)
			if bytes.ContainsAny(loc, "\r\n\x00 \\") || bytes.HasPrefix(loc, []byte("//")) {
				t.Fatalf("unsafe Location %q", loc)
			}
		}
		if first != nil && first.Action.Kind == ActionProxy {
			p := first.Action.Rewrite.Append(nil, r.Path())
			if len(r.Path()) > 0 && r.Path()[0] == '/' && (len(p) == 0 || p[0] != '/') {
				t.Fatalf("rewrite of %q gave %q", r.Path(), p)
			}
		}

		// The same request through fasthttp's parser and the adapter, when
		// fasthttp accepts it.
		var raw bytes.Buffer
		raw.Write(method)
		raw.WriteByte(' ')
		raw.Write(target)
		raw.WriteString(" HTTP/1.1\r\nHost: ")
		raw.Write(host)
		raw.WriteString("\r\n")
		for _, line := range bytes.Split(headers, []byte("\n")) {
			raw.Write(line)
			raw.WriteString("\r\n")
		}
		raw.WriteString("\r\n")
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(&raw)); err != nil {
			return
		}
		var a FastHTTPRequest
		a.Reset(&req, r.ip)
		got, _ := tbl.Match(&a)
		if ref := slowMatch(tbl, &a); ref != got {
			t.Fatalf("fasthttp: Match = %v, reference = %v", name(got), name(ref))
		}
	})
}

func name(r *Route) string {
	if r == nil {
		return "<none>"
	}
	return r.Name
}

func FuzzHeadersToStrip(f *testing.F) {
	f.Add([]byte("keep-alive"))
	f.Add([]byte("Upgrade, HTTP2-Settings"))
	f.Add([]byte(" ,X-A,,x-a , Host, content-length\t,close"))
	f.Add([]byte("X\x00Y, \xff"))
	fixed := HopByHopHeaders()
	f.Fuzz(func(t *testing.T, conn []byte) {
		got := AppendHeadersToStrip(nil, conn)
		if len(got) < len(fixed) {
			t.Fatalf("fixed list missing: %q", got)
		}
		for i, h := range fixed {
			if got[i] != h {
				t.Fatalf("got[%d] = %q, want %q", i, got[i], h)
			}
		}
		lower := strings.ToLower(string(conn))
		for i, name := range got {
			if !isToken([]byte(name)) {
				t.Fatalf("non-token %q", name)
			}
			for _, prev := range got[:i] {
				if strings.EqualFold(prev, name) {
					t.Fatalf("duplicate %q in %q", name, got)
				}
			}
			if i >= len(fixed) {
				if strings.EqualFold(name, "host") || strings.EqualFold(name, "content-length") {
					t.Fatalf("reported %q", name)
				}
				if !strings.Contains(lower, strings.ToLower(name)) {
					t.Fatalf("%q is not in %q", name, conn)
				}
			}
		}
	})
}

func FuzzXFF(f *testing.F) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), []byte("198.51.100.4, 10.9.9.9"))
	f.Add(uint8(1), []byte("1.1.1.1"))
	f.Add(uint8(2), []byte("[2001:db8::7]:443,  ,::ffff:10.1.1.1\nunknown"))
	f.Add(uint8(3), []byte("1.2.3.4:99999, fe80::1%eth0"))
	peers := []netip.Addr{
		netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("203.0.113.9"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:10.0.0.3"),
	}
	f.Fuzz(func(t *testing.T, sel uint8, xff []byte) {
		peer := peers[int(sel)%len(peers)]
		hdr := bytes.Split(xff, []byte("\n"))
		out := tp.AppendXFF(nil, peer, hdr)
		if bytes.ContainsAny(out, "\r\n\x00") {
			t.Fatalf("control bytes in %q", out)
		}
		if !bytes.HasSuffix(out, []byte(peer.Unmap().String())) {
			t.Fatalf("%q does not end with the peer", out)
		}
		if !tp.Contains(peer) && string(out) != peer.Unmap().String() {
			t.Fatalf("untrusted peer forwarded %q", out)
		}
		addrs, perr := ParseXFF(nil, hdr)
		if perr != nil && !errors.Is(perr, ErrInvalidForwardedFor) {
			t.Fatalf("ParseXFF error %v", perr)
		}
		ip := tp.ClientIP(peer, hdr)
		if !ip.IsValid() || ip.Is4In6() {
			t.Fatalf("ClientIP %v", ip)
		}
		if ip != peer.Unmap() {
			if !tp.Contains(peer) {
				t.Fatalf("untrusted peer yielded %v", ip)
			}
			found := false
			for _, a := range addrs {
				found = found || a == ip
			}
			// On a parse error ParseXFF stops at the first bad element from
			// the left, while ClientIP walks from the right; the address
			// may lie to the right of that element.
			if !found && perr == nil {
				t.Fatalf("ClientIP %v is not in the chain %v", ip, addrs)
			}
		}
	})
}

func FuzzFraming(f *testing.F) {
	f.Add([]byte("5"), []byte(""))
	f.Add([]byte("5\n5"), []byte(""))
	f.Add([]byte("5, 6"), []byte(""))
	f.Add([]byte(""), []byte("gzip, chunked"))
	f.Add([]byte(""), []byte("chunked\nchunked"))
	f.Add([]byte("0"), []byte("chunked"))
	f.Add([]byte(""), []byte(`x;a="b";c=d, Chunked`))
	f.Fuzz(func(t *testing.T, clRaw, teRaw []byte) {
		var cl, te [][]byte
		if len(clRaw) > 0 {
			cl = bytes.Split(clRaw, []byte("\n"))
		}
		if len(teRaw) > 0 {
			te = bytes.Split(teRaw, []byte("\n"))
		}
		fr, err := CheckFraming(cl, te)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousFraming) {
				t.Fatalf("error %v does not wrap the sentinel", err)
			}
			if fr.Chunked || fr.ContentLength != -1 {
				t.Fatalf("framing %+v with an error", fr)
			}
			return
		}
		if len(cl) > 0 && len(te) > 0 {
			t.Fatal("CL and TE accepted together")
		}
		switch {
		case len(te) > 0:
			if !fr.Chunked || fr.ContentLength != -1 {
				t.Fatalf("TE gave %+v", fr)
			}
			all := strings.ToLower(string(bytes.Join(te, []byte(","))))
			if strings.Count(all, "chunked") < 1 {
				t.Fatalf("accepted %q without chunked", all)
			}
		case len(cl) > 0:
			if fr.Chunked || fr.ContentLength < 0 {
				t.Fatalf("CL gave %+v", fr)
			}
			for _, line := range cl {
				for _, e := range bytes.Split(line, []byte(",")) {
					e = bytes.Trim(e, " \t")
					n, ok := parseLength(e)
					if !ok || n != fr.ContentLength {
						t.Fatalf("accepted element %q for length %d", e, fr.ContentLength)
					}
				}
			}
		default:
			if fr != (Framing{ContentLength: -1}) {
				t.Fatalf("no headers gave %+v", fr)
			}
		}
	})
}
