package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/logging"
	"github.com/tiergate/tiergate/internal/pgproxy"
	"github.com/tiergate/tiergate/internal/reshard"
	"github.com/tiergate/tiergate/shardmap"
)

const reshardUsage = `usage: dbproxy reshard -config old.yaml -to new.yaml [-state FILE] [-cutover] [-dry-run]
                      [-proxy host:port ...] [-database NAME] [flags]

Moves the rows whose shard changes from the shard map of old.yaml to the one
of new.yaml (same database, same tables; typically more shards), online:
copy, catch up, and with -cutover switch the proxies and delete the moved
rows from their old shards. Without -cutover it stops once caught up (change
capture stays installed); run it again with -cutover (and the same -state)
to finish.

The cutover, for the proxies listed with -proxy (their Postgres address;
the CLI logs in to their admin console, database "tiergate"):
  1. before running with -cutover, put new.yaml where the running proxies
     read their config (replace the file; do not send SIGHUP);
  2. the CLI runs PAUSE WRITES on every proxy (reads go on, writes wait),
     applies the last changes and verifies the moved rows;
  3. it runs RELOAD on every proxy: they re-read their config file and
     route by the new map;
  4. it runs RESUME, then deletes the moved rows from the old shards.
A failure before step 3 leaves the proxies on the old map and deletes
nothing; the job can be run again. Without -proxy nothing is paused or
reloaded: use that only when no proxy writes (or the proxies are stopped).

flags:
`

// reshardCmd is `dbproxy reshard`.
func reshardCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dbproxy reshard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reshardUsage)
		fs.PrintDefaults()
	}
	oldPath := fs.String("config", "", "config with the current shard map (required)")
	newPath := fs.String("to", "", "config with the new shard map (required)")
	state := fs.String("state", "", "file keeping the job's progress, to resume after a crash (default: none, in memory)")
	cutover := fs.Bool("cutover", false, "switch the proxies to the new map and delete the moved rows once caught up")
	dryRun := fs.Bool("dry-run", false, "print what would move and exit")
	database := fs.String("database", "", "the sharded database (default: the only one)")
	user := fs.String("user", "", "role on the shards; must own the sharded tables (default: the config's first user's server login)")
	password := fs.String("password", "", "its password (default: from the config)")
	adminUser := fs.String("admin-user", "", "console user on the proxies (default: the config's first admin user)")
	adminPassword := fs.String("admin-password", "", "its password (default: from the config)")
	batchRows := fs.Int("batch-rows", 0, "rows per copy batch (default 10000)")
	copyFrom := fs.String("copy-from", "", "replica (default) or primary")
	timeout := fs.Duration("pause-timeout", 30*time.Second, "how long PAUSE WRITES may wait for writes in flight")
	var proxies proxyList
	fs.Var(&proxies, "proxy", "a running proxy (host:port), repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *oldPath == "" || *newPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "dbproxy reshard: %v\n", err)
		return 1
	}
	oldCfg, err := pgproxy.LoadConfig(*oldPath)
	if err != nil {
		return fail(err)
	}
	newCfg, err := pgproxy.LoadConfig(*newPath)
	if err != nil {
		return fail(err)
	}
	job, err := newReshardJob(oldCfg, newCfg, *database, *user, *password)
	if err != nil {
		return fail(err)
	}
	if *dryRun {
		plan, err := reshard.NewPlan(job.oldMap, job.newMap)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "database %s\n", job.db)
		if err := plan.Describe(stdout); err != nil {
			return fail(err)
		}
		return 0
	}
	log, _, err := logging.New(oldCfg.Log)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *adminUser == "" && len(oldCfg.AdminUsers) > 0 {
		*adminUser = oldCfg.AdminUsers[0]
	}
	if *adminPassword == "" {
		*adminPassword = configPassword(oldCfg, *adminUser)
	}
	fleet := &proxyFleet{addrs: proxies, user: *adminUser, password: *adminPassword, timeout: *timeout, log: log, cancel: cancel}
	opts := reshard.Options{
		Old: job.oldMap, New: job.newMap, Nodes: job.nodes,
		Config:   reshard.Config{BatchRows: *batchRows, CopyFrom: *copyFrom},
		Cutover:  *cutover,
		Pause:    fleet.pause,
		Resume:   fleet.resume,
		Switch:   fleet.reload,
		Progress: reshard.NewBar(stderr, isTerminal(stderr)).Update,
		Log:      log,
	}
	if *state != "" {
		opts.Store = &reshard.FileStore{Path: *state}
	}
	if len(proxies) == 0 && *cutover {
		log.Warn("no -proxy given: the cutover pauses and reloads nothing")
	}
	if err := reshard.Run(ctx, opts); err != nil {
		if ferr := fleet.failure(); ferr != nil {
			err = fmt.Errorf("%w (%v)", ferr, err)
		}
		return fail(err)
	}
	if *cutover {
		fmt.Fprintf(stdout, "database %s: resharded to map version %d\n", job.db, job.newMap.Version())
	} else {
		fmt.Fprintf(stdout, "database %s: caught up; run again with -cutover to switch\n", job.db)
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && reshard.IsTerminal(f)
}

// proxyList is the repeatable -proxy flag.
type proxyList []string

func (p *proxyList) String() string { return strings.Join(*p, ",") }
func (p *proxyList) Set(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return err
	}
	*p = append(*p, v)
	return nil
}

// reshardJob is what the two configs say about the database to reshard.
type reshardJob struct {
	db             string
	oldMap, newMap *shardmap.Map
	nodes          map[string]reshard.Node
}

func newReshardJob(oldCfg, newCfg *pgproxy.Config, db, user, password string) (*reshardJob, error) {
	if db == "" {
		var names []string
		for name, d := range oldCfg.Databases {
			if d.Sharding != nil {
				names = append(names, name)
			}
		}
		if len(names) != 1 {
			slices.Sort(names)
			return nil, fmt.Errorf("say which database with -database (sharded: %v)", names)
		}
		db = names[0]
	}
	od, ok := oldCfg.Databases[db]
	if !ok || od.Sharding == nil {
		return nil, fmt.Errorf("%s is not a sharded database of the old config", db)
	}
	nd, ok := newCfg.Databases[db]
	if !ok || nd.Sharding == nil {
		return nil, fmt.Errorf("%s is not a sharded database of the new config", db)
	}
	if od.ServerDatabase != nd.ServerDatabase {
		return nil, fmt.Errorf("server_database differs: %q then %q", od.ServerDatabase, nd.ServerDatabase)
	}
	if user == "" && len(oldCfg.Users) > 0 {
		user = oldCfg.Users[0].ServerUser
	}
	if password == "" {
		for _, u := range oldCfg.Users {
			if u.ServerUser == user {
				password = u.ServerPassword
				break
			}
		}
	}
	job := &reshardJob{db: db, nodes: map[string]reshard.Node{}}
	var err error
	if job.oldMap, err = shardmap.New(*od.Sharding); err != nil {
		return nil, fmt.Errorf("old map: %w", err)
	}
	if job.newMap, err = shardmap.New(*nd.Sharding); err != nil {
		return nil, fmt.Errorf("new map: %w", err)
	}
	add := func(m *shardmap.Map, d pgproxy.DatabaseConfig) error {
		for i, sh := range d.Shards {
			name := m.ShardName(i)
			n := reshard.Node{Primary: shardDSN(sh.Primary, d.ServerDatabase, user, password)}
			if len(sh.Replicas) > 0 {
				n.Replica = shardDSN(sh.Replicas[0], d.ServerDatabase, user, password)
			}
			if prev, ok := job.nodes[name]; ok && prev.Primary != n.Primary {
				return fmt.Errorf("shard %s has primary %s in the new config, another in the old one", name, sh.Primary)
			}
			job.nodes[name] = n
		}
		return nil
	}
	if err := add(job.oldMap, od); err != nil {
		return nil, err
	}
	if err := add(job.newMap, nd); err != nil {
		return nil, err
	}
	return job, nil
}

func shardDSN(addr, db, user, password string) string {
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + db, RawQuery: "sslmode=disable&application_name=tiergate-reshard"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

func configPassword(cfg *pgproxy.Config, user string) string {
	for _, u := range cfg.Users {
		if u.Name == user {
			return u.Password
		}
	}
	return ""
}

// proxyFleet drives the running proxies' consoles for the cutover.
type proxyFleet struct {
	addrs          []string
	user, password string
	timeout        time.Duration
	log            *zap.Logger
	cancel         context.CancelFunc // stops the job when a pause fails

	mu  sync.Mutex
	err error // why the job was stopped
}

func (f *proxyFleet) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// console runs one command on every proxy's console.
func (f *proxyFleet) console(ctx context.Context, cmd string) error {
	var errs []error
	for _, addr := range f.addrs {
		dsn := shardDSN(addr, pgproxy.ConsoleDatabase, f.user, f.password)
		cctx, cancel := context.WithTimeout(ctx, f.timeout+10*time.Second)
		pc, err := pgconn.Connect(cctx, dsn)
		if err == nil {
			_, err = pc.Exec(cctx, cmd).ReadAll()
			_ = pc.Close(context.Background())
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy %s: %s: %w", addr, cmd, err))
		}
	}
	return errors.Join(errs...)
}

// pause is Options.Pause: PAUSE WRITES everywhere. If a proxy cannot be
// paused, the others are resumed and the job is stopped before it
// switches anything (Pause cannot return an error).
func (f *proxyFleet) pause() {
	if len(f.addrs) == 0 {
		return
	}
	if err := f.console(context.Background(), "PAUSE WRITES"); err != nil {
		f.log.Error("pausing the proxies failed; stopping before the switch", zap.Error(err))
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
		_ = f.console(context.Background(), "RESUME")
		f.cancel()
	}
}

// resume is Options.Resume.
func (f *proxyFleet) resume() {
	if len(f.addrs) == 0 {
		return
	}
	if err := f.console(context.Background(), "RESUME"); err != nil {
		f.log.Error("resuming a proxy failed: resume it by hand (console RESUME)", zap.Error(err))
	}
}

// reload is Options.Switch: RELOAD everywhere (idempotent).
func (f *proxyFleet) reload(ctx context.Context) error {
	if f.failure() != nil {
		return f.failure()
	}
	return f.console(ctx, "RELOAD")
}
