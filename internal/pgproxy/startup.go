package pgproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Startup packet codes (PostgreSQL's pqcomm.h).
const (
	codeCancel      = 80877102
	codeSSL         = 80877103
	codeGSSENC      = 80877104
	maxStartupBytes = 10000
	loginTimeout    = 15 * time.Second
)

// startup is a decoded StartupMessage.
type startup struct {
	major, minor uint16
	params       map[string]string
	unknownOpts  []string // _pq_.* protocol options
}

// readStartupPacket reads one length-prefixed startup-phase packet with
// exact reads (nothing is buffered past it, so TLS could follow).
func readStartupPacket(r io.Reader) (code uint32, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < 8 || n > maxStartupBytes {
		return 0, nil, fmt.Errorf("%w: invalid length of startup packet: %d", errProtocol, n)
	}
	body = make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(body), body[4:], nil
}

// parseStartupParams decodes the name/value pairs of a StartupMessage.
func parseStartupParams(body []byte) (map[string]string, error) {
	params := map[string]string{}
	bad := fmt.Errorf("%w: malformed startup packet", errProtocol)
	for {
		if len(body) == 0 {
			return nil, bad
		}
		if body[0] == 0 {
			if len(body) != 1 {
				return nil, bad
			}
			return params, nil
		}
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return nil, bad
		}
		key := string(body[:i])
		body = body[i+1:]
		j := bytes.IndexByte(body, 0)
		if j < 0 {
			return nil, bad
		}
		params[key] = string(body[:j])
		body = body[j+1:]
	}
}

// negotiate reads packets until a StartupMessage. It answers SSLRequest
// with 'S' and a TLS handshake when TLS is configured (the session then
// continues on the TLS connection), else with 'N', as it does
// GSSENCRequest, and serves a CancelRequest (then it returns nil).
func (srv *Server) negotiate(s *session) (*startup, error) {
	encrypted := false
	for i := 0; i < 3; i++ {
		code, body, err := readStartupPacket(s.cc)
		if err != nil {
			return nil, err
		}
		switch code {
		case codeSSL, codeGSSENC:
			if len(body) != 0 {
				return nil, fmt.Errorf("%w: malformed encryption request", errProtocol)
			}
			tc := srv.rt.Load().tls
			if code == codeGSSENC || tc == nil || encrypted || len(s.cc.peeked) > 0 {
				// No TLS here: the client goes on in clear text or gives
				// up, as with a server that has ssl=off. (Bytes sent before
				// our answer would bypass TLS: refuse to upgrade then.)
				if _, err := s.conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := s.conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tlsConn := tls.Server(s.conn, tc)
			if err := tlsConn.Handshake(); err != nil {
				return nil, fmt.Errorf("%w: TLS handshake: %v", errProtocol, err)
			}
			s.conn = tlsConn
			s.cc = &clientConn{Conn: tlsConn}
			encrypted = true
			continue
		case codeCancel:
			if len(body) < 8 || len(body) > 260 {
				return nil, fmt.Errorf("%w: malformed cancel request", errProtocol)
			}
			srv.cancel(binary.BigEndian.Uint32(body[:4]), body[4:])
			return nil, nil
		}
		if tc := srv.rt.Load().cfg.TLS; tc != nil && tc.Require && !encrypted {
			return nil, &loginError{code: "28000", msg: "SSL/TLS is required: connect with sslmode=require"}
		}
		major, minor := uint16(code>>16), uint16(code&0xffff)
		if major != 3 {
			return nil, fmt.Errorf("%w: unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", errUnsupported, major, minor)
		}
		params, err := parseStartupParams(body)
		if err != nil {
			return nil, err
		}
		st := &startup{major: major, minor: minor, params: params}
		for k := range params {
			if strings.HasPrefix(k, "_pq_.") {
				st.unknownOpts = append(st.unknownOpts, k)
				delete(params, k)
			}
		}
		return st, nil
	}
	return nil, fmt.Errorf("%w: too many encryption requests", errProtocol)
}

// clientAuth adapts a session's connection for authenticate.
type clientAuth struct {
	s *session
}

func (a clientAuth) send(msg pgproto3.BackendMessage) error {
	a.s.send(msg)
	return a.s.flush()
}

func (a clientAuth) receive() (pgproto3.FrontendMessage, error) {
	msg, err := a.s.rd.receive()
	if err != nil {
		var ne net.Error
		if isEOF(err) || errors.As(err, &ne) {
			return nil, errClientGone
		}
		if errors.Is(err, errProtocol) {
			return nil, err
		}
		return nil, errors.Join(errProtocol, err)
	}
	return msg, nil
}

func (a clientAuth) setAuthType(t uint32) error { return a.s.rd.setAuthType(t) }

// startupParamsSkipped are startup parameters that are not settings.
var startupParamsSkipped = map[string]bool{"user": true, "database": true, "options": true, "replication": true}

// clientSettings extracts the settings a client asked for at startup,
// including "-c name=value" and "--name=value" in options.
func clientSettings(params map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		if !startupParamsSkipped[k] {
			out[k] = v
		}
	}
	fields := strings.Fields(params["options"])
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		var kv string
		switch {
		case f == "-c" && i+1 < len(fields):
			i++
			kv = fields[i]
		case strings.HasPrefix(f, "-c"):
			kv = f[2:]
		case strings.HasPrefix(f, "--"):
			kv = f[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	return out
}

// login runs the startup phase of a new client connection: negotiation,
// authentication, and the first ParameterStatus/BackendKeyData/
// ReadyForQuery. It returns nil, nil for a served CancelRequest.
func (srv *Server) login(ctx context.Context, s *session) (*startup, error) {
	_ = s.conn.SetDeadline(time.Now().Add(loginTimeout))
	defer func() { _ = s.conn.SetDeadline(time.Time{}) }()
	st, err := srv.negotiate(s)
	if err != nil || st == nil {
		return nil, err
	}
	rt := srv.rt.Load()
	s.rd = newClientReader(s.cc, int(rt.cfg.MaxMessageSize))
	if st.minor > 0 {
		s.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: st.unknownOpts})
	}
	user := st.params["user"]
	if user == "" {
		return nil, fmt.Errorf("%w: no PostgreSQL user name specified in startup packet", errProtocol)
	}
	if _, ok := st.params["replication"]; ok && st.params["replication"] != "false" && st.params["replication"] != "0" && st.params["replication"] != "off" {
		return nil, fmt.Errorf("%w: replication connections are not supported by the proxy", errUnsupported)
	}
	db := st.params["database"]
	if db == "" {
		db = user
	}
	s.user, s.dbName = user, db
	u := rt.users[user]
	method := "scram-sha-256"
	var creds *credentials
	if u != nil {
		method, creds = u.cfg.Auth, u.creds
	}
	if err := authenticate(clientAuth{s}, method, user, creds, u != nil, mockSalt(srv.secret, user)); err != nil {
		if errors.Is(err, errAuthFailed) {
			srv.log.Info("authentication failed", zapUser(user), zapAddr(s.addr))
			return nil, fmt.Errorf("%w for user %q", errAuthFailed, user)
		}
		return nil, err
	}
	s.send(&pgproto3.AuthenticationOk{})
	if db == ConsoleDatabase {
		if !rt.cfg.isAdmin(user) {
			return nil, fmt.Errorf("%w: user %q may not use the admin console", errNotAdmin, user)
		}
		for _, p := range consoleParams {
			s.send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
		}
		return st, nil
	}
	cands := []*cluster{rt.clusters[db]}
	if sdb := rt.sharded[db]; sdb != nil {
		// Any shard's servers stand for every shard's defaults: a login
		// does not wait for one shard's failover.
		cands = loginOrder(sdb.shards)
		s.sh = newShardSession()
	}
	if cands[0] == nil {
		return nil, fmt.Errorf("%w: database %q does not exist", errUnknownDatabase, db)
	}
	s.sessionMode = rt.cfg.Pool.Mode == PoolModeSession
	asked := clientSettings(st.params)
	for _, cl := range cands {
		s.cl = cl
		var se *serverError
		if err = srv.initParams(ctx, s, rt, cl, asked); err == nil || !errors.As(err, &se) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// loginOrder lists a sharded database's shards for settling a login's
// parameters: those whose primary looks usable first, in shard order.
func loginOrder(shards []*cluster) []*cluster {
	out := make([]*cluster, 0, len(shards))
	for _, c := range shards {
		if c.primary.usable() {
			out = append(out, c)
		}
	}
	for _, c := range shards {
		if !c.primary.usable() {
			out = append(out, c)
		}
	}
	return out
}

// initParams settles the client's parameters: the servers' defaults,
// overridden by what the client asked for (validated and canonicalised by a
// server when they differ).
func (srv *Server) initParams(ctx context.Context, s *session, rt *runtime, cl *cluster, asked map[string]string) error {
	defaults := cl.knownParams(s.user)
	asked = canonicalNames(asked, defaults)
	need := defaults == nil
	for k, v := range asked {
		if defaults == nil || defaults[k] != v {
			need = true
		}
	}
	s.want = map[string]string{}
	if need {
		n := cl.primary
		if !n.usable() {
			if r, res := cl.pickReplica(0, nil); r != nil {
				res.Done(nil, 0)
				n = r
			}
		}
		sc, err := s.checkout(ctx, rt, n)
		if err != nil {
			return err
		}
		if defaults == nil {
			defaults = cl.knownParams(s.user)
		}
		err = sc.syncParams(asked, rt.cfg.Pool.ConnectTimeout)
		if err == nil {
			for k, v := range asked {
				if cur, ok := sc.params[k]; ok {
					v = cur // the server's spelling
				}
				s.want[k] = v
			}
		}
		sc.client.Store(0)
		sc.pool.release(sc)
		if err != nil {
			var re *errServerResponse
			if errors.As(err, &re) {
				return &loginError{code: re.code, msg: re.msg}
			}
			return &serverError{node: n.addr, err: err}
		}
	} else {
		for k, v := range asked {
			s.want[k] = v
		}
	}
	if defaults == nil {
		defaults = map[string]string{}
	}
	for _, k := range syncedParams {
		if _, ok := s.want[k]; !ok {
			if v, ok := defaults[k]; ok {
				s.want[k] = v
			}
		}
	}
	app := s.want["application_name"]
	s.appName.Store(&app)
	for k, v := range defaults {
		if w, ok := s.want[k]; ok {
			v = w
		}
		s.send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	for k, v := range s.want {
		if _, ok := defaults[k]; !ok && isSynced(k) {
			s.send(&pgproto3.ParameterStatus{Name: k, Value: v})
		}
	}
	return nil
}

// canonicalNames spells setting names the way the server reports them
// (names are case-insensitive: "timezone" is "TimeZone").
func canonicalNames(asked, defaults map[string]string) map[string]string {
	out := make(map[string]string, len(asked))
	for k, v := range asked {
		name := strings.ToLower(k)
		for _, known := range syncedParams {
			if strings.EqualFold(k, known) {
				name = known
			}
		}
		for known := range defaults {
			if strings.EqualFold(k, known) {
				name = known
			}
		}
		out[name] = v
	}
	return out
}

// consoleParams are what the console reports at login (psql wants a
// server_version).
var consoleParams = [][2]string{
	{"server_version", "15.0 (tiergate console)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
	{"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
	{"application_name", ""}, {"TimeZone", "UTC"},
}

// loginError is a server's ErrorResponse to a client's startup settings.
type loginError struct{ code, msg string }

func (e *loginError) Error() string { return e.msg }

var errNotAdmin = errors.New("permission denied")
