package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestReadYourWrites(t *testing.T) {
	c := sharedCluster(t)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, 2*time.Minute)
	p.waitReplicasReadable(t, ctx)
	conn := p.connect(t, ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS ryw (id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	replicaReads := 0
	for i := 0; i < 1000; i++ {
		if _, err := conn.Exec(ctx, "INSERT INTO ryw VALUES ($1, $2)", i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		var v string
		var rec bool
		if err := conn.QueryRow(ctx, "SELECT v, pg_is_in_recovery() FROM ryw WHERE id = $1", i).Scan(&v, &rec); err != nil {
			t.Fatalf("read %d after its write: %v", i, err)
		}
		if v != fmt.Sprint("v", i) {
			t.Fatalf("read %d: got %q", i, v)
		}
		if rec {
			replicaReads++
		}
	}
	// The floor only keeps reads off replicas that have not replayed the
	// write: once they catch up, reads go back to them.
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "reads back on a replica", func() bool {
		var rec bool
		err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
		return err == nil && rec
	})
	t.Logf("1000 writes each read back at once; %d of the reads were served by a replica that had replayed the write", replicaReads)
}

func TestPreparedStatementsAcrossCheckouts(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 2
	p := startProxy(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	setup := p.connect(t, ctx)
	if _, err := setup.Exec(ctx, "CREATE TABLE IF NOT EXISTS prep (id int primary key, v int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "INSERT INTO prep SELECT g, g*10 FROM generate_series(1, 100) g ON CONFLICT DO NOTHING"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}

	const clients, rounds = 6, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				conn, err := pgx.Connect(ctx, p.dsn("app", appPassword))
				if err != nil {
					return err
				}
				defer conn.Close(context.Background())
				// Explicitly named statements (pgx Prepare) and pgx's own
				// statement cache (stmtcache_*), both named.
				if _, err := conn.Prepare(ctx, "get", "SELECT v FROM prep WHERE id = $1"); err != nil {
					return err
				}
				if _, err := conn.Prepare(ctx, "put", "UPDATE prep SET v = v WHERE id = $1"); err != nil {
					return err
				}
				for r := 0; r < rounds; r++ {
					id := r%100 + 1
					var v int
					if err := conn.QueryRow(ctx, "get", id).Scan(&v); err != nil {
						return fmt.Errorf("round %d get: %w", r, err)
					}
					if v != id*10 {
						return fmt.Errorf("round %d: got %d", r, v)
					}
					if _, err := conn.Exec(ctx, "put", id); err != nil {
						return fmt.Errorf("round %d put: %w", r, err)
					}
					if err := conn.QueryRow(ctx, "SELECT v + $2 FROM prep WHERE id = $1", id, 1).Scan(&v); err != nil {
						return fmt.Errorf("round %d cached: %w", r, err)
					}
					// Unnamed statements across a Describe/Execute split.
					if err := conn.QueryRow(ctx, "SELECT v FROM prep WHERE id = $1", pgx.QueryExecModeDescribeExec, id).Scan(&v); err != nil {
						return fmt.Errorf("round %d describe-exec: %w", r, err)
					}
					if r%20 == 0 {
						// Deallocating on the client side must not break
						// the other statements.
						if err := conn.Deallocate(ctx, "get"); err != nil {
							return err
						}
						if _, err := conn.Prepare(ctx, "get", "SELECT v FROM prep WHERE id = $1"); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestBatchPipeline(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 2
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	conn := p.connect(t, ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS batchy (id int)"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		b := &pgx.Batch{}
		for i := 0; i < 50; i++ {
			b.Queue("INSERT INTO batchy VALUES ($1)", i)
			b.Queue("SELECT $1::int + 1", i)
		}
		res := conn.SendBatch(ctx, b)
		for i := 0; i < 50; i++ {
			if _, err := res.Exec(); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := res.QueryRow().Scan(&n); err != nil || n != i+1 {
				t.Fatalf("round %d query %d: %d %v", round, i, n, err)
			}
		}
		if err := res.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An error in the middle of a batch skips the rest until Sync.
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("SELECT 1/0")
	b.Queue("SELECT 2")
	err := conn.SendBatch(ctx, b).Close()
	if !isPgCode(err, "22012") {
		t.Fatalf("batch with division by zero: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT 3").Scan(&n); err != nil || n != 3 {
		t.Fatalf("after failed batch: %d %v", n, err)
	}
}

func TestCancel(t *testing.T) {
	c := sharedCluster(t)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, time.Minute)
	conn := p.connect(t, ctx)
	other := p.connect(t, ctx)

	// A concurrent query of another client must not be cancelled.
	otherDone := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, "SELECT pg_sleep(1.5)")
		otherDone <- err
	}()
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.Exec(qctx, "SELECT pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("other client's query: %v", err)
	}

	// The low-level path: pgconn.CancelRequest through the proxy.
	pc, err := pgconn.Connect(ctx, p.dsn("app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	// (ExecParams itself waits for the RowDescription, which PostgreSQL
	// only sends when the statement completes, so cancel from a timer.)
	cancelErr := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() { cancelErr <- pc.CancelRequest(context.Background()) })
	_, err = pc.ExecParams(ctx, "SELECT pg_sleep(30)", nil, nil, nil, nil).Close()
	if cerr := <-cancelErr; cerr != nil {
		t.Fatalf("CancelRequest: %v", cerr)
	}
	if !isPgCode(err, "57014") {
		t.Fatalf("want query_canceled (57014), got %v", err)
	}
	// The cancelled session goes on (pgx closes its own conn after a
	// context cancel, so check with pgconn's).
	if _, err := pc.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
}

func TestClientKilledMidTransaction(t *testing.T) {
	c := sharedCluster(t)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, time.Minute)
	raw, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgconn.ParseConfig(p.dsn("app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) { return raw, nil }
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Exec(ctx, "BEGIN; CREATE TEMP TABLE IF NOT EXISTS x(i int); SELECT txid_current(); SET application_name = 'killed-mid-tx'").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if pc.TxStatus() != 'T' {
		t.Fatalf("tx status %c", pc.TxStatus())
	}
	countOpen := func() int {
		var n int
		if err := c.Primary().QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in transaction%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := countOpen(); n != 1 {
		t.Fatalf("%d open transactions before the kill, want 1", n)
	}
	_ = raw.Close() // the client vanishes
	waitFor(t, ctx, "the transaction to be rolled back", func() bool { return countOpen() == 0 })

	// And a client killed while its query runs.
	raw2, _ := net.Dial("tcp", p.addr)
	cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) { return raw2, nil }
	pc2, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc2.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = pc2.Exec(context.Background(), "SELECT pg_sleep(0.5)").ReadAll() }()
	waitFor(t, ctx, "the sleep to start", func() bool {
		var n int
		_ = c.Primary().QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(0.5)%' AND state = 'active'").Scan(&n)
		return n == 1
	})
	_ = raw2.Close()
	waitFor(t, ctx, "no transaction left", func() bool {
		var n int
		_ = c.Primary().QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND (state LIKE 'idle in transaction%' OR query LIKE 'SELECT pg_sleep(0.5)%' AND state = 'active')").Scan(&n)
		return n == 0
	})
}

func TestAuth(t *testing.T) {
	c := sharedCluster(t)
	p := startProxy(t, testConfig(c))
	ctx := ctxT(t, time.Minute)
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"scram ok", "app", appPassword, true},
		{"scram wrong password", "app", "nope", false},
		{"md5 ok", "app_md5", md5Password, true},
		{"md5 wrong password", "app_md5", "nope", false},
		{"unknown user", "ghost", "whatever", false},
		{"empty password", "app", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, p.dsn(tc.user, tc.password))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var u string
				if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&u); err != nil || u != "app" {
					t.Fatalf("current_user %q, %v", u, err)
				}
				return
			}
			if err == nil {
				conn.Close(ctx)
				t.Fatal("login succeeded")
			}
			if tc.password != "" && !isPgCode(err, "28P01") {
				t.Fatalf("want 28P01, got %v", err)
			}
			if strings.Contains(err.Error(), "does not exist") {
				t.Fatalf("error reveals the user: %v", err)
			}
		})
	}

	// SCRAM verifier stored in the config instead of the password.
	var verifier string
	if err := c.Primary().QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'").Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(c)
	cfg.Users[0].Password = verifier
	cfg.Users[0].ServerPassword = appPassword
	p2 := startProxy(t, cfg)
	conn, err := pgx.Connect(ctx, p2.dsn("app", appPassword))
	if err != nil {
		t.Fatalf("login with a stored SCRAM verifier: %v", err)
	}
	conn.Close(ctx)
	if _, err := pgx.Connect(ctx, p2.dsn("app", "wrong")); !isPgCode(err, "28P01") {
		t.Fatalf("wrong password against a verifier: %v", err)
	}

	// Unknown database after a good login.
	if _, err := pgx.Connect(ctx, strings.Replace(p.dsn("app", appPassword), "/app?", "/nodb?", 1)); !isPgCode(err, "3D000") {
		t.Fatalf("unknown database: %v", err)
	}
}

func TestPoolTimeout(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 1
	cfg.Pool.QueryWaitTimeout = 200 * time.Millisecond
	cfg.Routing.ReadWriteSplit = new(false)
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	holder := p.connect(t, ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	waiter := p.connect(t, ctx)
	_, err = waiter.Exec(ctx, "SELECT 1")
	if !isPgCode(err, "53300") {
		t.Fatalf("want 53300, got %v", err)
	}
	_ = tx.Rollback(ctx)
	// The waiter's session survives the error.
	if _, err := waiter.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

func TestCopyAndListen(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 2
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	conn := p.connect(t, ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS copyt (id int, s text)"); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 5000)
	for i := range rows {
		rows[i] = []any{i, strings.Repeat("x", i%50)}
	}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"copyt"}, []string{"id", "s"}, pgx.CopyFromRows(rows))
	if err != nil || n != 5000 {
		t.Fatalf("copy from: %d %v", n, err)
	}
	var buf strings.Builder
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM copyt WHERE id < 100 ORDER BY id) TO STDOUT")
	if err != nil || tag.RowsAffected() != 100 {
		t.Fatalf("copy to: %v %v", tag, err)
	}
	// A COPY that fails midway leaves the session usable.
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("1\tok\nnot-a-number\tbad\n"), "COPY copyt FROM STDIN")
	if !isPgCode(err, "22P02") {
		t.Fatalf("bad copy: %v", err)
	}

	// LISTEN pins the session; notifications arrive while it idles.
	listener := p.connect(t, ctx)
	if _, err := listener.Exec(ctx, "LISTEN tg_chan"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := conn.Exec(ctx, "SELECT pg_notify('tg_chan', $1)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		note, err := listener.WaitForNotification(nctx)
		cancel()
		if err != nil || note.Payload != fmt.Sprint(i) {
			t.Fatalf("notification %d: %+v %v", i, note, err)
		}
		// The pinned session still runs queries between notifications.
		var one int
		if err := listener.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParameterStatusConsistent(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 1
	cfg.Routing.ReadWriteSplit = new(false)
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	open := func(tz, app string) *pgx.Conn {
		cc, err := pgx.ParseConfig(p.dsn("app", appPassword))
		if err != nil {
			t.Fatal(err)
		}
		cc.RuntimeParams["timezone"] = tz
		cc.RuntimeParams["application_name"] = app
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	a := open("Europe/Paris", "client-a")
	b := open("Asia/Tokyo", "client-b")
	for i := 0; i < 5; i++ {
		for _, tc := range []struct {
			conn     *pgx.Conn
			tz, name string
		}{{a, "Europe/Paris", "client-a"}, {b, "Asia/Tokyo", "client-b"}} {
			var tz, app string
			if err := tc.conn.QueryRow(ctx, "SELECT current_setting('TimeZone'), current_setting('application_name')").Scan(&tz, &app); err != nil {
				t.Fatal(err)
			}
			if tz != tc.tz || app != tc.name || tc.conn.PgConn().ParameterStatus("TimeZone") != tc.tz {
				t.Fatalf("client %s sees TimeZone %q (reported %q), application_name %q", tc.name, tz, tc.conn.PgConn().ParameterStatus("TimeZone"), app)
			}
		}
	}
	// A SET of a reported parameter follows the client.
	if _, err := a.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	var tz string
	_ = b.QueryRow(ctx, "SELECT current_setting('TimeZone')").Scan(&tz)
	if tz != "Asia/Tokyo" {
		t.Fatalf("client b sees %q after a's SET", tz)
	}
	if err := a.QueryRow(ctx, "SELECT current_setting('TimeZone')").Scan(&tz); err != nil || tz != "UTC" {
		t.Fatalf("client a sees %q after its SET: %v", tz, err)
	}
	// A bad startup setting fails the login like PostgreSQL does.
	cc, _ := pgx.ParseConfig(p.dsn("app", appPassword))
	cc.RuntimeParams["timezone"] = "Not/AZone"
	if _, err := pgx.ConnectConfig(ctx, cc); !isPgCode(err, "22023") {
		t.Fatalf("bad timezone: %v", err)
	}
}

var _ = errors.New

// TestCancelWhileQueued cancels a statement that is still waiting for a
// server connection (the pool is saturated): it fails at once with 57014
// instead of waiting for query_wait_timeout.
func TestCancelWhileQueued(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Pool.Size = 1
	cfg.Pool.QueryWaitTimeout = 20 * time.Second
	cfg.Routing.ReadWriteSplit = new(false)
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	holder := p.connect(t, ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.Connect(ctx, p.dsn("app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	waitQueued := func() {
		waitFor(t, ctx, "the query to queue", func() bool {
			for _, pl := range p.srv.rt.Load().allPools() {
				if pl.waiting.Load() > 0 {
					return true
				}
			}
			return false
		})
	}
	cancelErr := make(chan error, 1)
	go func() {
		waitQueued()
		cancelErr <- pc.CancelRequest(context.Background())
	}()
	start := time.Now()
	_, err = pc.Exec(ctx, "SELECT 1").ReadAll()
	if !isPgCode(err, "57014") {
		t.Fatalf("want 57014, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel of a queued statement took %v", d)
	}
	if err := <-cancelErr; err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if _, err := pc.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatalf("after the cancel: %v", err)
	}
}

// TestReadYourWritesWindow: with read_your_writes: window, reads after a
// write stay on the primary for ryw_window, then go back to replicas.
func TestReadYourWritesWindow(t *testing.T) {
	c := sharedCluster(t)
	cfg := testConfig(c)
	cfg.Routing.ReadYourWrites = RYWWindow
	cfg.Routing.RYWWindow = 300 * time.Millisecond
	p := startProxy(t, cfg)
	ctx := ctxT(t, time.Minute)
	p.waitReplicasReadable(t, ctx)
	conn := p.connect(t, ctx)
	onReplica := func() bool {
		var rec bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if !onReplica() {
		t.Fatal("read before any write went to the primary")
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS rywin (i int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO rywin VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if onReplica() && time.Since(written) < 300*time.Millisecond {
		t.Fatal("read right after a write went to a replica")
	}
	waitFor(t, ctx, "reads back on replicas after the window", onReplica)
}
