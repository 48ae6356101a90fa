package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// serverConn is one logged-in connection to a PostgreSQL server. It is
// owned by exactly one goroutine at a time: the pool while idle, a session
// while lent out. Only the atomics may be read by others (console, cancel).
type serverConn struct {
	id      uint64
	pool    *pool
	conn    net.Conn
	fe      *pgproto3.Frontend
	pid     uint32
	key     []byte
	created time.Time

	// params are the parameter values this connection is known to have:
	// what the server reported plus what the proxy SET on it.
	params map[string]string
	// reported are the parameters the server reports (ParameterStatus).
	reported map[string]struct{}
	// extra are the non-reported parameters the proxy SET on it (RESET when
	// the next client does not want them).
	extra map[string]bool
	// prepared holds the proxy names of the statements prepared on it.
	prepared map[string]struct{}
	// unnamedTag identifies the Parse whose unnamed statement it holds.
	unnamedTag uint64

	txStatus byte
	needSync bool // an extended-protocol error left it skipping to a Sync
	broken   bool
	dirty    bool // session state changed: DISCARD ALL before the next client

	wbuf []byte

	lastUsed   atomic.Int64  // unix ns of the last release
	client     atomic.Uint64 // session id using it, 0 when idle
	cancelRefs atomic.Int32  // cancel requests being sent for it
}

// dialServer opens and logs in a connection with pgconn, then takes the
// raw net.Conn over (pgconn.Hijack) so the session relays messages itself.
func dialServer(ctx context.Context, addr, database, user, password string, maxBody int, params map[string]string) (*serverConn, error) {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = host, uint16(port), database, user, password
	cfg.Fallbacks, cfg.TLSConfig, cfg.ValidateConnect, cfg.AfterConnect = nil, nil, nil, nil
	cfg.RuntimeParams = map[string]string{}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	if dl, ok := ctx.Deadline(); ok {
		cfg.ConnectTimeout = time.Until(dl)
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		_ = pc.Close(context.Background())
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		_ = pc.Close(context.Background())
		return nil, err
	}
	if hc.Frontend.ReadBufferLen() != 0 {
		_ = hc.Conn.Close()
		return nil, errors.New("unexpected buffered data after login")
	}
	fe := pgproto3.NewFrontend(hc.Conn, hc.Conn)
	fe.SetMaxBodyLen(maxBody)
	sc := &serverConn{
		conn: hc.Conn, fe: fe, pid: hc.PID, key: hc.SecretKey, created: time.Now(),
		params: make(map[string]string, len(hc.ParameterStatuses)+4), extra: map[string]bool{},
		prepared: map[string]struct{}{}, txStatus: hc.TxStatus,
	}
	sc.reported = make(map[string]struct{}, len(hc.ParameterStatuses))
	for k, v := range hc.ParameterStatuses {
		sc.params[k] = v
		sc.reported[k] = struct{}{}
	}
	return sc, nil
}

// write sends raw encoded messages.
func (sc *serverConn) write(b []byte) error {
	if _, err := sc.conn.Write(b); err != nil {
		sc.broken = true
		return err
	}
	return nil
}

// receive reads one message; an I/O or protocol error breaks the
// connection, a read deadline does not (the read can be resumed).
func (sc *serverConn) receive() (pgproto3.BackendMessage, error) {
	msg, err := sc.fe.Receive()
	if err != nil {
		if !isTimeout(err) {
			sc.broken = true
		}
		return nil, err
	}
	return msg, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errServerResponse is an ErrorResponse to an internal query.
type errServerResponse struct{ code, msg string }

func (e *errServerResponse) Error() string { return e.code + ": " + e.msg }

// exec runs an internal simple query, swallowing everything but the first
// column of each row, within timeout. ParameterStatus updates params.
func (sc *serverConn) exec(sql string, timeout time.Duration) ([]string, error) {
	if timeout > 0 {
		_ = sc.conn.SetDeadline(time.Now().Add(timeout))
		defer func() { _ = sc.conn.SetDeadline(time.Time{}) }()
	}
	sc.unnamedTag = 0 // a simple query drops the unnamed statement
	buf, _ := (&pgproto3.Query{String: sql}).Encode(sc.wbuf[:0])
	sc.wbuf = buf[:0]
	if err := sc.write(buf); err != nil {
		return nil, err
	}
	var rows []string
	var qerr error
	for {
		msg, err := sc.receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if len(m.Values) > 0 {
				rows = append(rows, string(m.Values[0]))
			}
		case *pgproto3.ErrorResponse:
			if qerr == nil {
				qerr = &errServerResponse{code: m.Code, msg: m.Message}
			}
		case *pgproto3.ParameterStatus:
			sc.params[m.Name] = m.Value
		case *pgproto3.ReadyForQuery:
			sc.txStatus = m.TxStatus
			return rows, qerr
		case *pgproto3.CopyInResponse:
			sc.broken = true
			return nil, errors.New("unexpected COPY in internal query")
		}
	}
}

// syncParams makes the connection's parameters match want: SET what
// differs, RESET extra settings the client does not want.
func (sc *serverConn) syncParams(want map[string]string, timeout time.Duration) error {
	var b strings.Builder
	for k, v := range want {
		if cur, ok := sc.params[k]; ok && cur == v {
			continue
		}
		b.WriteString("SET ")
		b.WriteString(quoteIdent(k))
		b.WriteString(" TO ")
		b.WriteString(quoteLiteral(v))
		b.WriteString(";")
	}
	for k := range sc.extra {
		if _, ok := want[k]; !ok {
			b.WriteString("RESET ")
			b.WriteString(quoteIdent(k))
			b.WriteString(";")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if _, err := sc.exec(b.String(), timeout); err != nil {
		return err
	}
	for k, v := range want {
		if _, rep := sc.reported[k]; rep {
			continue // the server sent the new value as ParameterStatus
		}
		sc.params[k] = v
		sc.extra[k] = true
	}
	for k := range sc.extra {
		if _, ok := want[k]; !ok {
			delete(sc.extra, k)
			delete(sc.params, k)
		}
	}
	return nil
}

// reset runs DISCARD ALL and forgets what it undid.
func (sc *serverConn) reset(timeout time.Duration) error {
	if _, err := sc.exec("DISCARD ALL", timeout); err != nil {
		return err
	}
	sc.forgetSessionState()
	return nil
}

// forgetSessionState drops what DISCARD ALL / DEALLOCATE removed.
func (sc *serverConn) forgetSessionState() {
	clear(sc.prepared)
	sc.unnamedTag = 0
	for k := range sc.extra {
		delete(sc.params, k)
	}
	clear(sc.extra)
	sc.dirty = false
}

// currentLSN samples pg_current_wal_lsn() (on the primary, right after a
// write transaction committed).
func (sc *serverConn) currentLSN(timeout time.Duration) (uint64, error) {
	rows, err := sc.exec("SELECT pg_current_wal_lsn()", timeout)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, errors.New("pg_current_wal_lsn returned no row")
	}
	return parseLSN(rows[0])
}

func (sc *serverConn) close() {
	sc.broken = true
	// Terminate politely; ignore errors, the socket closes either way.
	_ = sc.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = sc.conn.Write([]byte{'X', 0, 0, 0, 4})
	_ = sc.conn.Close()
}

// parseLSN parses "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	return h<<32 | l, nil
}

func formatLSN(v uint64) string {
	return strings.ToUpper(strconv.FormatUint(v>>32, 16)) + "/" + strings.ToUpper(strconv.FormatUint(v&0xffffffff, 16))
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
