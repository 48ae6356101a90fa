package pgproxy

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fakePG is a scripted stand-in for PostgreSQL, enough for the proxy's
// message handling: trust login, one-row answers to simple queries,
// completions for the extended protocol, transaction status from
// BEGIN/COMMIT/ROLLBACK. Tests and benchmarks that need no real server use
// it; it binds 127.0.0.1.
type fakePG struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]bool
}

func newFakePG(t testing.TB) *fakePG {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePG{ln: ln, open: map[net.Conn]bool{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.open[conn] = true
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(conn)
				f.mu.Lock()
				delete(f.open, conn)
				f.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for c := range f.open {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakePG) addr() string { return f.ln.Addr().String() }

var fakeParams = [][2]string{
	{"server_version", "15.0"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
	{"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"}, {"IntervalStyle", "postgres"},
	{"application_name", ""}, {"standard_conforming_strings", "on"}, {"integer_datetimes", "on"},
}

func (f *fakePG) serve(conn net.Conn) {
	defer conn.Close()
	be := pgproto3.NewBackend(conn, conn)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		if _, ok := msg.(*pgproto3.StartupMessage); !ok {
			return
		}
		break
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range fakeParams {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	tx := byte('I')
	failed := false // skipping to Sync after an error
	row := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("x"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		if failed {
			if _, ok := msg.(*pgproto3.Sync); !ok {
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			q := strings.ToUpper(strings.TrimSpace(m.String))
			switch {
			case strings.Contains(q, "PG_IS_IN_RECOVERY"): // the health check
				be.Send(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
					{Name: []byte("r"), DataTypeOID: 16, DataTypeSize: 1, TypeModifier: -1},
					{Name: []byte("l"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
					{Name: []byte("a"), DataTypeOID: 701, DataTypeSize: 8, TypeModifier: -1}}})
				be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("f"), []byte("0/16B3748"), []byte("0")}})
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			case strings.Contains(q, "PG_CURRENT_WAL_LSN"):
				be.Send(row)
				be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("0/16B3748")}})
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			case strings.HasPrefix(q, "BEGIN"):
				tx = 'T'
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("BEGIN")})
			case strings.HasPrefix(q, "COMMIT"), strings.HasPrefix(q, "ROLLBACK"):
				tx = 'I'
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("COMMIT")})
			case strings.HasPrefix(q, "SET"), strings.HasPrefix(q, "RESET"), strings.HasPrefix(q, "DISCARD"):
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SET")})
			case strings.HasPrefix(q, "FAIL"):
				be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601", Message: "syntax error"})
			case q == "":
				be.Send(&pgproto3.EmptyQueryResponse{})
			default:
				be.Send(row)
				be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("1")}})
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			}
			be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
			if be.Flush() != nil {
				return
			}
		case *pgproto3.Parse:
			if strings.HasPrefix(strings.ToUpper(m.Query), "FAIL") {
				// PostgreSQL flushes an error at once, then skips to Sync.
				be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601", Message: "syntax error"})
				if be.Flush() != nil {
					return
				}
				failed = true
				continue
			}
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Bind:
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Describe:
			if m.ObjectType == 'S' {
				be.Send(&pgproto3.ParameterDescription{})
			}
			be.Send(row)
		case *pgproto3.Execute:
			be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("1")}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
		case *pgproto3.Close:
			be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			failed = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
			if be.Flush() != nil {
				return
			}
		case *pgproto3.Flush:
			if be.Flush() != nil {
				return
			}
		case *pgproto3.FunctionCall:
			be.Send(&pgproto3.FunctionCallResponse{Result: []byte("1")})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
			if be.Flush() != nil {
				return
			}
		case *pgproto3.Terminate:
			return
		}
	}
}

// fakeConfig is a proxy config over a fake server: trust users "fuzz" and
// "admin" (console), database app with no replicas.
func fakeConfig(addr string) *Config {
	cfg := &Config{
		Listen:     "127.0.0.1:0",
		AdminUsers: []string{"admin"},
		Users:      []UserConfig{{Name: "fuzz", Auth: "trust"}, {Name: "admin", Auth: "trust"}, {Name: "pw", Password: "pw"}},
		Databases:  map[string]DatabaseConfig{"app": {Primary: addr}},
	}
	cfg.MaxMessageSize = 1 << 20
	cfg.Pool.Size = 4
	cfg.Pool.QueryWaitTimeout = 500_000_000 // 0.5s
	cfg.SetDefaults()
	return cfg
}
