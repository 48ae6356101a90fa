package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tiergate/tiergate/internal/cluster"
)

// The SQL the failover logic runs on the nodes. Every function opens a
// fresh connection (a pooled one could hide a dead server or outlive a
// demotion) with synchronous_commit = local, so bookkeeping never waits
// for a synchronous standby that is gone.

// epochDDL creates the one-row-per-term table on a primary.
const epochDDL = `CREATE SCHEMA IF NOT EXISTS tiergate;
CREATE TABLE IF NOT EXISTS tiergate.ha_epoch (
	shard        text        NOT NULL,
	term         bigint      NOT NULL,
	primary_name text        NOT NULL,
	timeline     integer     NOT NULL,
	decided_by   text        NOT NULL,
	decided_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (shard, term)
)`

// probeSQL reads everything an observation needs in one round trip.
const probeSQL = `SELECT pg_is_in_recovery(),
	CASE WHEN pg_is_in_recovery() THEN 0 ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END,
	coalesce((pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint, 0),
	coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0),
	CASE WHEN pg_is_in_recovery() THEN coalesce(w.received_tli, (pg_control_checkpoint()).timeline_id)
	     ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
	current_setting('synchronous_standby_names'),
	to_regclass('tiergate.ha_epoch') IS NOT NULL,
	coalesce(w.status, ''),
	coalesce(w.sender_host, ''),
	coalesce(w.sender_port, 0),
	coalesce(extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time)::float8, -1)
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true`

// pgConfigs holds one parsed connection config per node address.
type pgConfigs map[string]*pgx.ConnConfig

func newPGConfigs(cfg *Config) (pgConfigs, error) {
	out := pgConfigs{}
	for _, s := range cfg.Shards {
		for _, n := range s.Nodes {
			host, port, err := net.SplitHostPort(n.Address)
			if err != nil {
				return nil, fmt.Errorf("failover: node %s: %w", n.Name, err)
			}
			dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=%s",
				connValue(host), connValue(port), connValue(cfg.User), connValue(cfg.Database), connValue(cfg.SSLMode))
			pc, err := pgx.ParseConfig(dsn)
			if err != nil {
				return nil, fmt.Errorf("failover: node %s: %w", n.Name, err)
			}
			pc.Password = cfg.Password
			pc.ConnectTimeout = cfg.CheckTimeout
			pc.RuntimeParams["application_name"] = "tiergate-failover"
			pc.RuntimeParams["synchronous_commit"] = "local"
			pc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
			out[n.Address] = pc
		}
	}
	return out, nil
}

// connect opens a fresh connection to node n.
func (m *Manager) connect(ctx context.Context, n NodeConfig) (*pgx.Conn, error) {
	pc, ok := m.pg[n.Address]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNode, n.Name)
	}
	c, err := pgx.ConnectConfig(ctx, pc.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", n.Name, err)
	}
	return c, nil
}

// withConn runs fn on a fresh connection to n.
func (m *Manager) withConn(ctx context.Context, n NodeConfig, fn func(*pgx.Conn) error) error {
	c, err := m.connect(ctx, n)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	if err := fn(c); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return nil
}

// probe reads one node's state. It never fails: an unreachable node is an
// observation with Up false and Err set.
func (m *Manager) probe(ctx context.Context, shard string, n NodeConfig) cluster.NodeObservation {
	o := cluster.NodeObservation{Shard: shard, Node: n.Name}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CheckTimeout)
	defer cancel()
	err := m.withConn(ctx, n, func(c *pgx.Conn) error {
		var (
			cur, recv, replay int64
			hasEpoch          bool
			senderPort        int32
			age               float64
			tli               int32
		)
		if err := c.QueryRow(ctx, probeSQL).Scan(&o.InRecovery, &cur, &recv, &replay, &tli, &o.SyncStandbys,
			&hasEpoch, &o.Receiver, &o.Sender, &senderPort, &age); err != nil {
			return err
		}
		o.Timeline = int(tli)
		o.CurrentLSN, o.ReceiveLSN, o.ReplayLSN = uint64(cur), uint64(recv), uint64(replay)
		if o.Sender != "" {
			o.Sender = net.JoinHostPort(o.Sender, strconv.Itoa(int(senderPort)))
		}
		if age >= 0 {
			o.ReceiverAge = time.Duration(age * float64(time.Second))
		}
		if hasEpoch {
			var e int64
			if err := c.QueryRow(ctx, `SELECT coalesce(max(term), 0) FROM tiergate.ha_epoch WHERE shard = $1`, shard).Scan(&e); err != nil {
				return err
			}
			o.Epoch = uint64(e)
		}
		return nil
	})
	if err != nil {
		o.Err = elide(err.Error(), 120)
		return cluster.NodeObservation{Shard: shard, Node: n.Name, Err: o.Err}
	}
	o.Up = true
	return o
}

// exec runs statements (no arguments) on n, each in its own round trip.
func (m *Manager) exec(ctx context.Context, n NodeConfig, stmts ...string) error {
	return m.withConn(ctx, n, func(c *pgx.Conn) error {
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", firstLine(s), err)
			}
		}
		return nil
	})
}

// setPrimaryConninfo points replica n at primary (or freezes it with an
// empty conninfo: the WAL receiver stops and is not restarted, so its
// positions stop moving) and reloads the configuration.
func (m *Manager) setPrimaryConninfo(ctx context.Context, n NodeConfig, primary *NodeConfig) error {
	ci := ""
	if primary != nil {
		ci = m.conninfo(*primary, n.Name)
	}
	return m.exec(ctx, n, "ALTER SYSTEM SET primary_conninfo = "+quoteLiteral(ci), "SELECT pg_reload_conf()")
}

// conninfo is the primary_conninfo a replica named appName uses to
// stream from primary.
func (m *Manager) conninfo(primary NodeConfig, appName string) string {
	host, port, _ := net.SplitHostPort(primary.Address)
	parts := []string{"host=" + connValue(host), "port=" + connValue(port), "user=" + connValue(m.cfg.ReplicationUser)}
	if m.cfg.ReplicationPassword != "" {
		parts = append(parts, "password="+connValue(m.cfg.ReplicationPassword))
	}
	parts = append(parts, "application_name="+connValue(appName))
	return strings.Join(parts, " ")
}

// waitFrozen polls until n runs no WAL receiver.
func (m *Manager) waitFrozen(ctx context.Context, n NodeConfig) error {
	return poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var k int
		err := m.withConn(ctx, n, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_wal_receiver`).Scan(&k)
		})
		return err == nil && k == 0, nil
	})
}

// promote runs pg_promote on n if it is still in recovery and waits for it
// to accept writes. pg_promote returning false (timeout) is an error; the
// caller retries the same candidate, never another one. step is told of
// each completed step.
func (m *Manager) promote(ctx context.Context, n NodeConfig, step func(what string)) error {
	return m.withConn(ctx, n, func(c *pgx.Conn) error {
		var inRecovery bool
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
			return err
		}
		if inRecovery {
			var ok bool
			secs := int(m.cfg.PromoteTimeout / time.Second)
			if err := c.QueryRow(ctx, `SELECT pg_promote(true, `+strconv.Itoa(secs)+`)`).Scan(&ok); err != nil {
				return fmt.Errorf("pg_promote: %w", err)
			}
			if !ok {
				return fmt.Errorf("pg_promote did not finish within %s", m.cfg.PromoteTimeout)
			}
		}
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
			return err
		}
		if inRecovery {
			return errors.New("still in recovery after pg_promote")
		}
		step(n.Name + " promoted: out of recovery")
		// CHECKPOINT puts the new timeline into pg_control (pg_rewind of
		// the old primary needs it).
		if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		step("CHECKPOINT done on " + n.Name)
		return nil
	})
}

// writeEpoch records term as decided with n as primary, in the epoch
// table on n, and returns n's timeline. READ WRITE overrides a soft fence
// (default_transaction_read_only) left from an earlier life of the node.
func (m *Manager) writeEpoch(ctx context.Context, shard string, n NodeConfig, term uint64) (int, error) {
	var tli int32
	err := m.withConn(ctx, n, func(c *pgx.Conn) error {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		for _, s := range strings.Split(epochDDL, ";\n") {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("create epoch table: %w", err)
			}
		}
		if err := tx.QueryRow(ctx, `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`).Scan(&tli); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tiergate.ha_epoch (shard, term, primary_name, timeline, decided_by)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (shard, term) DO UPDATE SET primary_name = EXCLUDED.primary_name,
				timeline = EXCLUDED.timeline, decided_by = EXCLUDED.decided_by, decided_at = now()`,
			shard, int64(term), n.Name, tli, m.coord.Name()); err != nil {
			return fmt.Errorf("insert epoch: %w", err)
		}
		return tx.Commit(ctx)
	})
	return int(tli), err
}

// setReadOnly sets or resets default_transaction_read_only on n (the soft
// fence of a stale primary: it stops accidental writes from clients that
// bypass the proxies; a session can override it).
func (m *Manager) setReadOnly(ctx context.Context, n NodeConfig, on bool) error {
	stmt := "ALTER SYSTEM RESET default_transaction_read_only"
	if on {
		stmt = "ALTER SYSTEM SET default_transaction_read_only = on"
	}
	return m.exec(ctx, n, stmt, "SELECT pg_reload_conf()")
}

// setSyncStandbys sets synchronous_standby_names on n.
func (m *Manager) setSyncStandbys(ctx context.Context, n NodeConfig, value string) error {
	return m.exec(ctx, n, "ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(value), "SELECT pg_reload_conf()")
}

// currentLSN reads pg_current_wal_lsn() of a writable node.
func (m *Manager) currentLSN(ctx context.Context, n NodeConfig) (uint64, error) {
	var v int64
	err := m.withConn(ctx, n, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&v)
	})
	return uint64(v), err
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// connValue quotes a libpq keyword/value connection string value.
func connValue(s string) string {
	if s != "" && !strings.ContainsAny(s, " '\\\t\n") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return shorten(s, 60)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// elide shortens s to about n bytes by cutting its middle: a driver
// error's head names the node, its tail the cause ("connect: connection
// refused").
func elide(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head := n / 3
	tail := len(s) - (n - head)
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + "…" + s[tail:]
}

// isConnError reports whether err means the server could not be reached
// (as opposed to an SQL error from a reachable server).
func isConnError(err error) bool {
	var pgErr *pgconn.PgError
	return err != nil && !errors.As(err, &pgErr)
}

// poll calls cond every interval until it returns true, an error, or ctx
// ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
