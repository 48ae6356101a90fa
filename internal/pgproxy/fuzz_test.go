package pgproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// startupBytes encodes a protocol 3.0 StartupMessage.
func startupBytes(params ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, pgproto3.ProtocolVersion30)
	for _, p := range params {
		body = append(body, p...)
		body = append(body, 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

func enc(msgs ...pgproto3.FrontendMessage) []byte {
	var out []byte
	for _, m := range msgs {
		out, _ = m.Encode(out)
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fuzzSeeds are hand-written client byte streams.
func fuzzSeeds() [][]byte {
	login := startupBytes("user", "fuzz", "database", "app")
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	return [][]byte{
		cat(login, enc(&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{})),
		cat(ssl, login, enc(&pgproto3.Query{String: "BEGIN"}, &pgproto3.Query{String: "SELECT 1"})),
		cat(login, enc(&pgproto3.Parse{Name: "s1", Query: "SELECT $1"}, &pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}},
			&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})),
		cat(login, enc(&pgproto3.Parse{Query: "SELECT 2"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Flush{}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})),
		cat(login, enc(&pgproto3.Parse{Query: "FAIL"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Query{String: "SET tiergate.route = replica"}, &pgproto3.Query{String: "SHOW tiergate.route"})),
		cat(login, []byte{'Z', 0, 0, 0, 4}),             // not a client message
		cat(login, []byte{'Q', 0x7f, 0xff, 0xff, 0xff}), // oversized
		cat(login, []byte{'Q', 0, 0, 0, 2}),             // impossible length
		cat(login, enc(&pgproto3.CopyData{Data: []byte("x")}, &pgproto3.FunctionCall{Function: 1})),
		startupBytes("user", "admin", "database", "tiergate"),
		cat(startupBytes("user", "admin", "database", "tiergate"), enc(&pgproto3.Query{String: "SHOW POOLS"}, &pgproto3.Query{String: "SHOW NODES"}, &pgproto3.Parse{})),
		startupBytes("user", "ghost", "database", "app"),
		startupBytes("database", "app"),
		{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 0}, // CancelRequest
		{0, 0, 0, 8, 0, 2, 0, 0},                                      // protocol 2.0
		{0, 0, 0, 9, 0, 3, 0, 2, 0},                                   // protocol 3.2, no params
		{0xff, 0xff, 0xff, 0xff},
		{},
	}
}

// scriptConn is the proxy's side of a client connection that sends input
// and then closes: Read drains input and returns io.EOF, Write records the
// answer. Deadlines are accepted and ignored.
type scriptConn struct {
	in  *bytes.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error) { return c.in.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}
func (c *scriptConn) Close() error { return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6432}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// runClientBytes feeds raw client bytes to a session, as a client that
// sends them and disconnects, and returns what the proxy answered. It
// fails the test if the session does not end.
func runClientBytes(t testing.TB, srv *Server, input []byte) []byte {
	conn := &scriptConn{in: bytes.NewReader(input)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serveConn(context.Background(), conn, func() {})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		var stacks bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Fatalf("session did not end after the client left; input %q\n%s", input, stacks.String())
	}
	srv.Resume() // the input may have PAUSEd the proxy from the console
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return append([]byte(nil), conn.out.Bytes()...)
}

// checkAnswer verifies the proxy's output is a well-formed sequence of
// backend messages (after 'N' answers to encryption requests).
func checkAnswer(t testing.TB, input, out []byte) {
	if len(input) >= 8 && (binary.BigEndian.Uint32(input[4:8]) == codeSSL || binary.BigEndian.Uint32(input[4:8]) == codeGSSENC) {
		for len(out) > 0 && out[0] == 'N' && (len(out) == 1 || out[1] == 'N' || out[1] == 'R' || out[1] == 'E' || out[1] == 'v') {
			out = out[1:]
		}
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(out), io.Discard)
	for {
		_, err := fe.Receive()
		if err == nil {
			continue
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && fe.ReadBufferLen() == 0 {
			return // clean end
		}
		t.Fatalf("proxy answered malformed bytes (%v) to input %q:\n%q", err, input, out)
	}
}

func newFuzzServer(t testing.TB) *Server {
	fake := newFakePG(t)
	srv, err := New(fakeConfig(fake.addr()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.onPanic = func(r any) {
		t.Errorf("panic in session: %v\n%s", r, debug.Stack())
	}
	t.Cleanup(func() {
		for _, p := range srv.rt.Load().allPools() {
			p.close()
		}
	})
	return srv
}

// FuzzClientSession feeds arbitrary bytes to a client session: startup,
// authentication and the message loop must never panic or hang, and must
// answer only with well-formed messages (an ErrorResponse before closing
// on garbage).
func FuzzClientSession(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	srv := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		out := runClientBytes(t, srv, input)
		checkAnswer(t, input, out)
	})
}

// TestMalformedMessages checks the answers to protocol violations: an
// ErrorResponse with SQLSTATE 08P01 (0A000 for an unsupported protocol)
// and a closed connection, while other clients go on.
func TestMalformedMessages(t *testing.T) {
	srv := newFuzzServer(t)
	login := startupBytes("user", "fuzz", "database", "app")
	tests := []struct {
		name  string
		input []byte
		code  string
	}{
		{"unknown message type", cat(login, []byte{'Z', 0, 0, 0, 4}), "08P01"},
		{"oversized message", cat(login, []byte{'Q', 0x7f, 0xff, 0xff, 0xff}), "08P01"},
		{"bad length", cat(login, []byte{'Q', 0, 0, 0, 2}), "08P01"},
		{"garbage startup", []byte{0, 0, 0, 3, 1, 2, 3}, "08P01"},
		{"protocol 2.0", []byte{0, 0, 0, 8, 0, 2, 0, 0}, "0A000"},
		{"no user", startupBytes("database", "app"), "08P01"},
		{"console for a non-admin", startupBytes("user", "fuzz", "database", "tiergate"), "42501"},
		{"replication", startupBytes("user", "fuzz", "database", "app", "replication", "database"), "0A000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := runClientBytes(t, srv, tc.input)
			checkAnswer(t, tc.input, out)
			fe := pgproto3.NewFrontend(bytes.NewReader(out), io.Discard)
			var last *pgproto3.ErrorResponse
			for {
				msg, err := fe.Receive()
				if err != nil {
					break
				}
				if e, ok := msg.(*pgproto3.ErrorResponse); ok {
					cp := *e
					last = &cp
				}
			}
			if last == nil || last.Code != tc.code || last.Severity != "FATAL" {
				t.Fatalf("want FATAL %s, got %+v\n%q", tc.code, last, out)
			}
		})
	}
	// The proxy still serves a well-behaved client.
	out := runClientBytes(t, srv, cat(login, enc(&pgproto3.Query{String: "SELECT 1"})))
	if !bytes.Contains(out, []byte("SELECT 1")) {
		t.Fatalf("good client after bad ones: %q", out)
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzClientSession from the
// seeds when PGPROXY_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("PGPROXY_WRITE_CORPUS") == "" {
		t.Skip("set PGPROXY_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	dir := "testdata/fuzz/FuzzClientSession"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		body := "go test fuzz v1\n[]byte(" + quoteGo(s) + ")\n"
		if err := os.WriteFile(dir+"/seed"+string(rune('a'+i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quoteGo(b []byte) string {
	var out bytes.Buffer
	out.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			out.WriteByte(c)
		default:
			const hex = "0123456789abcdef"
			out.WriteString(`\x`)
			out.WriteByte(hex[c>>4])
			out.WriteByte(hex[c&15])
		}
	}
	out.WriteByte('"')
	return out.String()
}
