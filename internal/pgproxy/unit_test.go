package pgproxy

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/internal/config"
	"github.com/tiergate/tiergate/router/sqlroute"
)

func TestConfigValidate(t *testing.T) {
	base := func() string {
		return "users: [{name: app, password: pw}, {name: admin, password: pw}]\n" +
			"databases: {app: {primary: 127.0.0.1:5432, replicas: [127.0.0.1:5433]}}\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", base(), ""},
		{"bad pool mode", base() + "pool: {mode: statement}\n", `pool.mode: "statement" is not one of transaction, session`},
		{"min idle above size", base() + "pool: {size: 2, min_idle: 3}\n", "pool.min_idle: must be between 0 and size"},
		{"ryw mode", base() + "routing: {read_your_writes: maybe}\n", `routing.read_your_writes: "maybe" is not one of lsn, window, off`},
		{"keyed balancer", base() + "routing: {balancer: {policy: consistent_hash, hash_key: client_ip}}\n", "routing.balancer.policy"},
		{"unknown admin", base() + "admin_users: [root]\n", `admin_users[0]: "root" is not in users`},
		{"console name", "users: [{name: app, password: pw}]\ndatabases: {tiergate: {primary: 127.0.0.1:5432}}\n", "databases.tiergate"},
		{"md5 with verifier", "users: [{name: app, auth: md5, password: 'SCRAM-SHA-256$4096:c2FsdA==$" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "='}]\ndatabases: {app: {primary: 127.0.0.1:5432}}\n", "users[0].password: a SCRAM verifier cannot check md5 logins"},
		{"bad verifier", "users: [{name: app, password: 'SCRAM-SHA-256$x'}]\ndatabases: {app: {primary: 127.0.0.1:5432}}\n", "users[0].password: malformed SCRAM-SHA-256 verifier"},
		{"tiny message size", base() + "max_message_size: 100\n", "max_message_size: must be between 1KiB and 1GiB"},
		{"health rise", base() + "health: {rise: -1}\n", "health.rise: -1 is outside"},
		{"health timeout", base() + "health: {interval: 1s, timeout: 2s}\n", "health.timeout: 2s must be shorter than interval"},
		{"write function", base() + "routing: {classifier: {write_functions: ['a.b.c']}}\n", "routing.classifier.write_functions[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := config.Parse("t.yaml", []byte(tc.yaml), &c, func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	var c Config
	if err := config.Parse("t.yaml", []byte(base()), &c, nil); err != nil {
		t.Fatal(err)
	}
	if c.Pool.Size != 20 || c.Pool.Mode != PoolModeTransaction || c.Pool.QueryWaitTimeout != 30*time.Second ||
		c.Routing.ReadYourWrites != RYWLSN || c.Routing.Balancer.Policy != "least_conn" || c.Users[0].Auth != "scram-sha-256" ||
		c.Users[0].ServerPassword != "pw" || c.Databases["app"].ServerDatabase != "app" || c.Health.Interval != time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestClassOf(t *testing.T) {
	cl, err := sqlroute.New(sqlroute.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sql  string
		want stmtClass
	}{
		{"SELECT 1", stmtClass{replica: true}},
		{"INSERT INTO t VALUES (1)", stmtClass{write: true}},
		{"SELECT * FROM t FOR UPDATE", stmtClass{write: true}},
		{"BEGIN", stmtClass{begin: true}},
		{"BEGIN READ ONLY", stmtClass{begin: true, readOnly: true, replica: true}},
		{"/* tiergate: primary */ SELECT 1", stmtClass{hint: true}},
		{"LISTEN ch", stmtClass{write: true, session: true, pin: true, listen: true}}, // a hot standby refuses LISTEN
		{"DISCARD ALL", stmtClass{session: true, clearsPrepared: true}},
		{"SET tiergate.route = replica", stmtClass{proxySet: true, route: routeReplica}},
		{"SHOW tiergate.route", stmtClass{proxyShow: true}},
	}
	for _, tc := range tests {
		got := classOf(cl.Classify(tc.sql))
		got.proxyErr = nil
		// Only compare the fields the case sets, plus replica/write.
		if got.replica != tc.want.replica || got.write != tc.want.write || got.begin != tc.want.begin ||
			got.readOnly != tc.want.readOnly || got.pin != tc.want.pin || got.listen != tc.want.listen ||
			got.clearsPrepared != tc.want.clearsPrepared || got.proxySet != tc.want.proxySet ||
			got.proxyShow != tc.want.proxyShow || got.route != tc.want.route || got.hint != tc.want.hint {
			t.Errorf("%s: got %+v, want %+v", tc.sql, got, tc.want)
		}
	}
	if c := classOf(cl.Classify("SET tiergate.route = sideways")); c.proxyErr == nil {
		t.Error("bad tiergate.route value accepted")
	}
}

func TestWantsReplica(t *testing.T) {
	rt := &runtime{cfg: &Config{}}
	tests := []struct {
		name  string
		route routeMode
		class stmtClass
		want  bool
	}{
		{"read", routeAuto, stmtClass{replica: true}, true},
		{"write", routeAuto, stmtClass{write: true}, false},
		{"begin", routeAuto, stmtClass{begin: true}, false},
		{"begin read only", routeAuto, stmtClass{begin: true, readOnly: true, replica: true}, true},
		{"read that pins", routeAuto, stmtClass{replica: true, pin: true, session: true}, false},
		{"forced primary", routePrimary, stmtClass{replica: true}, false},
		{"forced replica", routeReplica, stmtClass{write: true}, true},
		{"hint beats SET", routePrimary, stmtClass{replica: true, hint: true}, true},
	}
	for _, tc := range tests {
		s := &session{route: tc.route}
		if got := s.wantsReplica(rt, tc.class); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

// scriptAuth plays a client against authenticate.
type scriptAuth struct {
	sent  []pgproto3.BackendMessage
	reply func(pgproto3.BackendMessage) pgproto3.FrontendMessage
}

func (a *scriptAuth) send(m pgproto3.BackendMessage) error { a.sent = append(a.sent, m); return nil }
func (a *scriptAuth) setAuthType(uint32) error             { return nil }
func (a *scriptAuth) receive() (pgproto3.FrontendMessage, error) {
	if r := a.reply(a.sent[len(a.sent)-1]); r != nil {
		return r, nil
	}
	return nil, errors.New("no reply")
}

// scramClient is a minimal client side of SCRAM-SHA-256 for the test.
func scramClient(password string) func(pgproto3.BackendMessage) pgproto3.FrontendMessage {
	const nonce = "rOprNGfwEbeRWgbNEkqO"
	clientFirstBare := "n=,r=" + nonce
	return func(m pgproto3.BackendMessage) pgproto3.FrontendMessage {
		switch m := m.(type) {
		case *pgproto3.AuthenticationSASL:
			return &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,," + clientFirstBare)}
		case *pgproto3.AuthenticationSASLContinue:
			serverFirst := string(m.Data)
			var salt []byte
			var iter int
			var full string
			for _, a := range strings.Split(serverFirst, ",") {
				switch {
				case strings.HasPrefix(a, "r="):
					full = a[2:]
				case strings.HasPrefix(a, "s="):
					salt, _ = base64.StdEncoding.DecodeString(a[2:])
				case strings.HasPrefix(a, "i="):
					for _, c := range a[2:] {
						iter = iter*10 + int(c-'0')
					}
				}
			}
			creds, _ := scramFromPassword(password, salt, iter)
			withoutProof := "c=biws,r=" + full
			authMsg := clientFirstBare + "," + serverFirst + "," + withoutProof
			sig := hmacSHA256(creds.storedKey, []byte(authMsg))
			// clientKey = HMAC(salted, "Client Key"); recover it from storedKey is
			// impossible, so derive it again.
			salted, _ := pbkdf2Key(password, salt, iter)
			clientKey := hmacSHA256(salted, []byte("Client Key"))
			proof := make([]byte, len(clientKey))
			for i := range proof {
				proof[i] = clientKey[i] ^ sig[i]
			}
			return &pgproto3.SASLResponse{Data: []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))}
		}
		return nil
	}
}

func TestSCRAMServer(t *testing.T) {
	creds, err := newCredentials("app", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	ok := &scriptAuth{reply: scramClient("s3cret")}
	if err := authSCRAM(ok, creds, nil); err != nil {
		t.Fatalf("good password: %v", err)
	}
	final := ok.sent[len(ok.sent)-1].(*pgproto3.AuthenticationSASLFinal)
	if !strings.HasPrefix(string(final.Data), "v=") {
		t.Fatalf("server-final %q", final.Data)
	}
	bad := &scriptAuth{reply: scramClient("wrong")}
	if err := authSCRAM(bad, creds, nil); !errors.Is(err, errAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// Unknown user: same exchange, stable mock salt, failure.
	secret := []byte("k")
	ghost := &scriptAuth{reply: scramClient("s3cret")}
	if err := authenticate(ghost, "scram-sha-256", "ghost", nil, false, mockSalt(secret, "ghost")); !errors.Is(err, errAuthFailed) {
		t.Fatalf("unknown user: %v", err)
	}
	if string(mockSalt(secret, "ghost")) != string(mockSalt(secret, "ghost")) || string(mockSalt(secret, "a")) == string(mockSalt(secret, "b")) {
		t.Fatal("mock salt not stable per user")
	}
	// A stored verifier authenticates the same password.
	v := "SCRAM-SHA-256$4096:" + base64.StdEncoding.EncodeToString(creds.salt) + "$" +
		base64.StdEncoding.EncodeToString(creds.storedKey) + ":" + base64.StdEncoding.EncodeToString(creds.serverKey)
	fromV, err := newCredentials("app", v)
	if err != nil {
		t.Fatal(err)
	}
	if err := authSCRAM(&scriptAuth{reply: scramClient("s3cret")}, fromV, nil); err != nil {
		t.Fatalf("verifier: %v", err)
	}
	// Channel binding is refused.
	cb := &scriptAuth{reply: func(m pgproto3.BackendMessage) pgproto3.FrontendMessage {
		return &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("p=tls-server-end-point,,n=,r=x")}
	}}
	if err := authSCRAM(cb, creds, nil); !errors.Is(err, errProtocol) {
		t.Fatalf("channel binding: %v", err)
	}
}

func pbkdf2Key(password string, salt []byte, iter int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
}

// md5Response is what a client answers to AuthenticationMD5Password.
func md5Response(user, password string, salt [4]byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt[:]...))
	return "md5" + hex.EncodeToString(outer[:])
}

func TestMD5Server(t *testing.T) {
	creds, _ := newCredentials("app", "pw")
	client := func(password string) func(pgproto3.BackendMessage) pgproto3.FrontendMessage {
		return func(m pgproto3.BackendMessage) pgproto3.FrontendMessage {
			salt := m.(*pgproto3.AuthenticationMD5Password).Salt
			return &pgproto3.PasswordMessage{Password: md5Response("app", password, salt)}
		}
	}
	if err := authMD5(&scriptAuth{reply: client("pw")}, "app", creds); err != nil {
		t.Fatal(err)
	}
	if err := authMD5(&scriptAuth{reply: client("nope")}, "app", creds); !errors.Is(err, errAuthFailed) {
		t.Fatal(err)
	}
	// A stored md5 hash works for md5 logins.
	hashed, _ := newCredentials("app", "md5"+creds.md5Hash)
	if err := authMD5(&scriptAuth{reply: client("pw")}, "app", hashed); err != nil {
		t.Fatal(err)
	}
}

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		v, err := parseLSN(s)
		if err != nil || formatLSN(v) != s {
			t.Errorf("%s: %v %v", s, formatLSN(v), err)
		}
	}
	if _, err := parseLSN("nope"); err == nil {
		t.Error("bad LSN parsed")
	}
	a, _ := parseLSN("1/0")
	b, _ := parseLSN("0/FFFFFFFF")
	if a <= b {
		t.Error("LSN order")
	}
}

func TestClientSettings(t *testing.T) {
	got := clientSettings(map[string]string{"user": "u", "database": "d", "application_name": "x",
		"options": "-c statement_timeout=5s --search-path=foo -cwork_mem=4MB"})
	want := map[string]string{"application_name": "x", "statement_timeout": "5s", "search_path": "foo", "work_mem": "4MB"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q in %v", k, got[k], got)
		}
	}
	c := canonicalNames(map[string]string{"timezone": "UTC", "DATESTYLE": "ISO", "work_mem": "1MB"}, map[string]string{"TimeZone": "x"})
	if c["TimeZone"] != "UTC" || c["DateStyle"] != "ISO" || c["work_mem"] != "1MB" {
		t.Fatalf("%v", c)
	}
}
