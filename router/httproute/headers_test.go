package httproute

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestHopByHop(t *testing.T) {
	fixed := HopByHopHeaders()
	fixedList := fixed[:]
	tests := []struct {
		name, connection string
		extra            []string // expected beyond the fixed list, in order
	}{
		{"none", "", nil},
		{"keep-alive only", "keep-alive", nil},
		{"close", "close", []string{"Close"}},
		{"upgrade any case", "UPGRADE", nil},
		{"custom tokens", "X-Secret, x-internal-auth", []string{"X-Secret", "x-internal-auth"}},
		{"ows and empty elements", " ,\tX-A ,, x-b\t,", []string{"X-A", "x-b"}},
		{"duplicates any case", "X-A, x-a, X-A", []string{"X-A"}},
		{"never strip host or length", "Host, content-length, X-A", []string{"X-A"}},
		{"invalid tokens skipped", "X A, X\x00B, X-C", []string{"X-C"}},
		{"h2c upgrade", "Upgrade, HTTP2-Settings", []string{"Http2-Settings"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendHeadersToStrip(nil, []byte(tc.connection))
			want := append(slices.Clone(fixedList), tc.extra...)
			if !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
	// Appending to a list that already holds names does not repeat them.
	got := AppendHeadersToStrip([]string{"x-a", "connection"}, []byte("X-A, X-B"))
	n := 0
	for _, g := range got {
		if strings.EqualFold(g, "connection") || strings.EqualFold(g, "x-a") {
			n++
		}
	}
	if n != 2 || !slices.Contains(got, "X-B") || len(got) != 2+len(fixedList) {
		t.Errorf("got %q", got)
	}
	for _, h := range fixedList {
		if !IsHopByHop([]byte(strings.ToUpper(h))) {
			t.Errorf("IsHopByHop(%s) = false", h)
		}
	}
	if IsHopByHop([]byte("X-Forwarded-For")) {
		t.Error("X-Forwarded-For is not hop-by-hop")
	}
	buf := make([]string, 0, 16)
	if n := testing.AllocsPerRun(100, func() { buf = AppendHeadersToStrip(buf[:0], []byte("keep-alive, Upgrade, close")) }); n != 0 {
		t.Errorf("common Connection values: %v allocs", n)
	}
}

func lines(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, l := range s {
		out[i] = []byte(l)
	}
	return out
}

func TestTrustedProxies(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::1": true, "2001:db9::1": false, "172.16.5.5": true, "172.32.0.1": false,
	} {
		if got := tp.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v", ip, got)
		}
	}
	_, err = ParseTrustedProxies([]string{"10.0.0.0/8", "nope", "10.0.0.0/33", "::ffff:1.2.3.4/64"})
	var msgs []string
	if err != nil {
		msgs = strings.Split(err.Error(), "\n")
	}
	want := []string{`[1]: "nope" is not a CIDR or IP address`, `[2]: "10.0.0.0/33" is not a CIDR`, `[3]: "::ffff:1.2.3.4/64": an IPv4-mapped prefix needs at least 96 bits`}
	if len(msgs) != len(want) {
		t.Fatalf("errors %q", msgs)
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("error %d = %q, want %q", i, msgs[i], want[i])
		}
	}
}

func TestForwardedFor(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		peer     string
		xff      [][]byte
		wantXFF  string
		wantIP   string
		noTrust  string // AppendXFF with the zero TrustedProxies
		parsedOK bool
	}{
		{"untrusted peer drops spoofed chain", "203.0.113.9", lines("1.1.1.1, 10.0.0.1"), "203.0.113.9", "203.0.113.9", "203.0.113.9", true},
		{"trusted peer, no header", "10.0.0.2", nil, "10.0.0.2", "10.0.0.2", "10.0.0.2", true},
		{"trusted peer appends", "10.0.0.2", lines("198.51.100.4"), "198.51.100.4, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"rightmost untrusted is the client", "10.0.0.2", lines("6.6.6.6, 198.51.100.4, 10.9.9.9"), "6.6.6.6, 198.51.100.4, 10.9.9.9, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"several lines joined into one", "10.0.0.2", lines("6.6.6.6,198.51.100.4", " 10.9.9.9 "), "6.6.6.6, 198.51.100.4, 10.9.9.9, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"all trusted: leftmost", "10.0.0.2", lines("10.1.1.1, 10.2.2.2"), "10.1.1.1, 10.2.2.2, 10.0.0.2", "10.1.1.1", "10.0.0.2", true},
		{"garbage stops the walk", "10.0.0.2", lines("6.6.6.6, evil, 10.3.3.3"), "6.6.6.6, evil, 10.3.3.3, 10.0.0.2", "10.3.3.3", "10.0.0.2", false},
		{"garbage right next to peer", "10.0.0.2", lines("6.6.6.6, unknown"), "6.6.6.6, unknown, 10.0.0.2", "10.0.0.2", "10.0.0.2", false},
		{"ports and brackets", "10.0.0.2", lines("198.51.100.4:5555, [2001:db8::7]:443"), "198.51.100.4:5555, [2001:db8::7]:443, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"ipv6 peer", "2001:db8::1", lines("2001:db8::2, 2001:db9::5"), "2001:db8::2, 2001:db9::5, 2001:db8::1", "2001:db9::5", "2001:db8::1", true},
		{"mapped peer", "::ffff:10.0.0.2", lines("198.51.100.4"), "198.51.100.4, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"mapped element", "10.0.0.2", lines("::ffff:198.51.100.4"), "::ffff:198.51.100.4, 10.0.0.2", "198.51.100.4", "10.0.0.2", true},
		{"empty elements and junk whitespace dropped", "10.0.0.2", lines(" , 1.2.3.4 ,, a b ,\x01x"), "1.2.3.4, 10.0.0.2", "10.0.0.2", "10.0.0.2", false},
		{"zone is garbage", "10.0.0.2", lines("fe80::1%eth0"), "fe80::1%eth0, 10.0.0.2", "10.0.0.2", "10.0.0.2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer := netip.MustParseAddr(tc.peer)
			if got := string(tp.AppendXFF(nil, peer, tc.xff)); got != tc.wantXFF {
				t.Errorf("AppendXFF = %q, want %q", got, tc.wantXFF)
			}
			if got := tp.ClientIP(peer, tc.xff); got.String() != tc.wantIP {
				t.Errorf("ClientIP = %s, want %s", got, tc.wantIP)
			}
			if got := string((TrustedProxies{}).AppendXFF([]byte("X: "), peer, tc.xff)); got != "X: "+tc.noTrust {
				t.Errorf("zero TrustedProxies AppendXFF = %q", got)
			}
			addrs, err := ParseXFF(nil, tc.xff)
			if (err == nil) != tc.parsedOK {
				t.Errorf("ParseXFF err = %v", err)
			}
			if err != nil && !errors.Is(err, ErrInvalidForwardedFor) {
				t.Errorf("ParseXFF error does not wrap the sentinel: %v", err)
			}
			for _, a := range addrs {
				if a.Is4In6() || !a.IsValid() {
					t.Errorf("ParseXFF returned %v", a)
				}
			}
		})
	}
	if got := string(tp.AppendXFF(nil, netip.Addr{}, lines("1.2.3.4"))); got != "" {
		t.Errorf("unknown peer: %q", got)
	}
	xff := lines("6.6.6.6, 198.51.100.4, 10.9.9.9")
	peer := netip.MustParseAddr("10.0.0.2")
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() {
		buf = tp.AppendXFF(buf[:0], peer, xff)
		_ = tp.ClientIP(peer, xff)
	}); n != 0 {
		t.Errorf("XFF helpers: %v allocs", n)
	}
}

func TestCheckFraming(t *testing.T) {
	tests := []struct {
		name    string
		cl, te  [][]byte
		want    Framing
		wantErr string // "" for none
	}{
		{"no body framing", nil, nil, Framing{ContentLength: -1}, ""},
		{"content-length", lines("42"), nil, Framing{ContentLength: 42}, ""},
		{"content-length zero", lines("0"), nil, Framing{ContentLength: 0}, ""},
		{"content-length ows", lines(" 7\t"), nil, Framing{ContentLength: 7}, ""},
		{"duplicate identical lines", lines("5", "5"), nil, Framing{ContentLength: 5}, ""},
		{"identical list", lines("5, 5"), nil, Framing{ContentLength: 5}, ""},
		{"chunked", nil, lines("chunked"), Framing{Chunked: true, ContentLength: -1}, ""},
		{"chunked any case", nil, lines("Chunked"), Framing{Chunked: true, ContentLength: -1}, ""},
		{"gzip then chunked", nil, lines("gzip, chunked"), Framing{Chunked: true, ContentLength: -1}, ""},
		{"codings across lines", nil, lines("gzip", "chunked"), Framing{Chunked: true, ContentLength: -1}, ""},
		{"coding with parameters", nil, lines(`foo;a=1;b="x", chunked`), Framing{Chunked: true, ContentLength: -1}, ""},

		{"CL and TE", lines("5"), lines("chunked"), Framing{}, "both Content-Length and Transfer-Encoding"},
		{"CL and empty TE", lines("5"), lines(""), Framing{}, "both"},
		{"differing lines", lines("5", "6"), nil, Framing{}, "differing Content-Length values 5 and 6"},
		{"differing list", lines("5, 50"), nil, Framing{}, "differing"},
		{"non-numeric", lines("abc"), nil, Framing{}, "not a decimal length"},
		{"signed", lines("+5"), nil, Framing{}, "not a decimal length"},
		{"negative", lines("-1"), nil, Framing{}, "not a decimal length"},
		{"hex", lines("0x10"), nil, Framing{}, "not a decimal length"},
		{"space inside", lines("1 0"), nil, Framing{}, "not a decimal length"},
		{"empty", lines(""), nil, Framing{}, "not a decimal length"},
		{"empty element", lines("5,"), nil, Framing{}, "not a decimal length"},
		{"overflow", lines("99999999999999999999"), nil, Framing{}, "not a decimal length"},
		{"vertical tab", lines("\v5"), nil, Framing{}, "not a decimal length"},
		{"identity", nil, lines("identity"), Framing{}, "does not end in chunked"},
		{"gzip only", nil, lines("gzip"), Framing{}, "does not end in chunked"},
		{"chunked not last", nil, lines("chunked, gzip"), Framing{}, "does not end in chunked"},
		{"chunked twice", nil, lines("chunked, chunked"), Framing{}, "more than once"},
		{"chunked twice across lines", nil, lines("chunked", "chunked"), Framing{}, "more than once"},
		{"empty TE", nil, lines(""), Framing{}, "empty Transfer-Encoding"},
		{"only commas", nil, lines(" , ,"), Framing{}, "empty Transfer-Encoding"},
		{"obfuscated with vtab", nil, lines("\vchunked"), Framing{}, "not a token"},
		{"obfuscated with nul", nil, lines("chunked\x00"), Framing{}, "not a token"},
		{"obfuscated with quotes", nil, lines(`"chunked"`), Framing{}, "not a token"},
		{"prefixed name", nil, lines("xchunked"), Framing{}, "does not end in chunked"},
		{"chunked with parameter", nil, lines("chunked;q=1"), Framing{}, "chunked takes no parameters"},
		{"malformed parameter", nil, lines("gzip;=1, chunked"), Framing{}, "malformed parameters"},
		{"non-ascii", nil, lines("chunk\xc3\xa9d"), Framing{}, "not a token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckFraming(tc.cl, tc.te)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrAmbiguousFraming) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q wrapping ErrAmbiguousFraming", err, tc.wantErr)
			}
		})
	}
	cl := lines("1234")
	if n := testing.AllocsPerRun(100, func() { _, _ = CheckFraming(cl, nil) }); n != 0 {
		t.Errorf("valid framing: %v allocs", n)
	}
}
