package sqlroute

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// maxChainTokens caps the operators (and similar tokens, see chainLength)
// in one statement that is handed to the parser. A
// left-deep chain such as 1 + 1 + ... + 1 parses without exhausting the
// parser's own stack but yields a tree so deep that libpg_query's recursive
// output overflows the C stack and crashes the process (seen at 40000 terms
// with an 8 MiB thread stack); from about 5000 terms protobuf decoding
// refuses the tree anyway. Statements over the cap go to the primary
// unparsed, reason "too complex to parse".
const maxChainTokens = 4096

// Classifier routes statements. It is safe for concurrent use; Classify
// never blocks on other callers (the cache is lock-free on reads) and never
// starts goroutines. Build a new Classifier when the config changes.
type Classifier struct {
	cache    *otter.Cache[uint64, *Decision]
	counter  *stats.Counter
	analyzer analyzer
	maxParse int

	parses     atomic.Uint64
	unparsable atomic.Uint64
}

// New returns a Classifier for cfg. Zero fields of cfg take their defaults.
func New(cfg Config) (*Classifier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqlroute: %w", err)
	}
	funcs := newFuncMatcher(cfg.WriteFunctions, cfg.VolatileFunctions)
	counter := stats.NewCounter()
	cache, err := otter.New(&otter.Options[uint64, *Decision]{
		MaximumSize:   cfg.CacheSize,
		StatsRecorder: counter,
		// Run maintenance on the caller: no background goroutines to stop.
		Executor: func(fn func()) { fn() },
	})
	if err != nil {
		return nil, fmt.Errorf("sqlroute: cache: %w", err)
	}
	return &Classifier{
		cache:    cache,
		counter:  counter,
		analyzer: analyzer{funcs: &funcs},
		maxParse: int(cfg.MaxParseBytes),
	}, nil
}

// Classify routes sql, the text of a simple query (possibly several
// statements) or of one prepared statement. A query shape seen before is
// answered from the cache without parsing or allocating.
//
// The Decision is the cached one for sql's digest, plus FlagVolatile when a
// string literal of sql is 'now', 'today', 'tomorrow' or 'yesterday': the
// one fact that depends on a literal's value, which the digest leaves out.
//
// The error is non-nil only for a tiergate.* statement the proxy rejects
// (it wraps ErrProxySetting); the Decision is then still filled in
// (KindProxySet, FlagProxySetting) and nothing must be forwarded. A statement
// the PostgreSQL parser rejects is not an error: it goes to the primary with
// FlagUnparsable and reason "unparsable".
func (c *Classifier) Classify(sql string) (Decision, error) {
	var sc scanResult
	scanSQL(sql, &sc, nil)
	if sc.proxySetting {
		return proxySettingDecision(sql, &sc)
	}
	if d, ok := c.cache.GetIfPresent(sc.digest); ok {
		return withLiteralFacts(*d, &sc), nil
	}
	d, cacheable := c.analyze(sql, &sc)
	if cacheable {
		c.cache.Set(sc.digest, d)
	}
	return withLiteralFacts(*d, &sc), nil
}

// withLiteralFacts adds to a Decision what the text's literal values say.
func withLiteralFacts(d Decision, sc *scanResult) Decision {
	if sc.timeLiteral {
		d.Flags |= FlagVolatile
	}
	return d
}

// Stats are counters for the admin console and metrics.
type Stats struct {
	Hits       uint64 // Classify answered from the cache
	Misses     uint64 // Classify had to analyse the statement
	Parses     uint64 // calls into the PostgreSQL parser
	Unparsable uint64 // statements the parser rejected or that were too large
	Entries    int    // cached query shapes (approximate)
}

// Stats returns a snapshot of the counters.
func (c *Classifier) Stats() Stats {
	s := c.counter.Snapshot()
	return Stats{
		Hits:       s.Hits,
		Misses:     s.Misses,
		Parses:     c.parses.Load(),
		Unparsable: c.unparsable.Load(),
		Entries:    c.cache.EstimatedSize(),
	}
}

// analyze parses sql and builds its Decision. cacheable is false when the
// decision may depend on more than the digest (parse errors, size limit).
func (c *Classifier) analyze(sql string, sc *scanResult) (d *Decision, cacheable bool) {
	if len(sql) > c.maxParse {
		c.unparsable.Add(1)
		return unparsable(sc, "too large to parse"), false
	}
	if chainLength(sql) > maxChainTokens {
		c.unparsable.Add(1)
		return unparsable(sc, "too complex to parse"), false
	}
	if strings.IndexByte(sql, 0) >= 0 {
		// The parser takes a C string and would see only the text before
		// the NUL; the wire protocol cannot carry one anyway.
		c.unparsable.Add(1)
		return unparsable(sc, "unparsable"), false
	}
	c.parses.Add(1)
	tree, err := pg_query.Parse(sql)
	if err != nil {
		c.unparsable.Add(1)
		return unparsable(sc, "unparsable"), false
	}
	var read, written tableSet
	results := make([]stmtResult, 0, len(tree.Stmts))
	for _, raw := range tree.Stmts {
		results = append(results, c.analyzer.statement(raw.GetStmt(), &read, &written))
	}
	d = combine(results)
	d.TablesRead = read.names
	d.TablesWritten = written.names
	d.Digest = sc.digest
	d.shape = shapeOf(sql, tree)
	applyHint(d, sc.hint)
	d.Flags |= commentFlags(sc)
	return d, true
}

// shapeOf builds the shard-routing shape of a parsed text.
func shapeOf(sql string, tree *pg_query.ParseResult) *shape {
	lits := newLitIndex(sql)
	sh := &shape{stmts: make([]stmtShape, 0, len(tree.Stmts))}
	for _, raw := range tree.Stmts {
		sh.stmts = append(sh.stmts, buildShape(raw.GetStmt(), lits))
	}
	return sh
}

// combine merges the results of a query's statements: the primary if any
// non-neutral statement needs it, else a replica if any non-neutral
// statement may use one, else (only neutral statements) the primary.
func combine(results []stmtResult) *Decision {
	d := &Decision{Target: Primary, Kind: KindEmpty, Reason: "empty query"}
	if len(results) == 0 {
		return d
	}
	d.Kinds = make([]Kind, len(results))
	primary, replica := -1, -1
	for i, r := range results {
		d.Kinds[i] = r.kind
		d.Flags |= r.flags
		switch {
		case r.neutral:
		case r.target == Primary && primary < 0:
			primary = i
		case r.target == Replica && replica < 0:
			replica = i
		}
	}
	d.Kind = d.Kinds[0]
	switch {
	case primary >= 0:
		d.Target, d.Reason = Primary, results[primary].reason
	case replica >= 0:
		d.Target, d.Reason = Replica, results[replica].reason
	default:
		d.Target, d.Reason = Primary, results[0].reason
	}
	if len(results) > 1 {
		d.Flags |= FlagMultiStatement
	}
	return d
}

// applyHint lets a /* tiergate: ... */ comment override the target.
func applyHint(d *Decision, h hint) {
	switch h {
	case hintPrimary:
		d.Target = Primary
	case hintReplica:
		d.Target = Replica
	default:
		return
	}
	d.Reason = "hint"
	d.Flags |= FlagHint
}

// commentFlags are the flags of the shard and cache hint comments.
func commentFlags(sc *scanResult) Flags {
	var f Flags
	if sc.shardHint != hintNone {
		f |= FlagShardHint
	}
	if sc.cacheHint {
		f |= FlagCacheHint
	}
	if sc.noCacheHint {
		f |= FlagNoCacheHint
	}
	return f
}

var unknownKinds = []Kind{KindUnknown}

func unparsable(sc *scanResult, reason string) *Decision {
	d := &Decision{
		Target: Primary,
		Kind:   KindUnknown,
		Kinds:  unknownKinds,
		Reason: reason,
		Flags:  FlagUnparsable,
		Digest: sc.digest,
	}
	if sc.statements > 1 {
		d.Flags |= FlagMultiStatement
	}
	applyHint(d, sc.hint)
	d.Flags |= commentFlags(sc)
	return d
}

var (
	proxySetKinds  = []Kind{KindProxySet}
	proxyShowKinds = []Kind{KindShow}
)

// proxySettingDecision handles SET/RESET/SHOW tiergate.*, which never reach
// the parser (SET tiergate.route = primary is not even valid PostgreSQL:
// PRIMARY is a reserved word).
func proxySettingDecision(sql string, sc *scanResult) (Decision, error) {
	ps, kind, err := parseProxySetting(sql)
	d := Decision{
		Target:  Primary,
		Kind:    kind,
		Kinds:   proxySetKinds,
		Reason:  "tiergate setting",
		Flags:   FlagProxySetting,
		Setting: ps,
		Digest:  sc.digest,
	}
	if kind == KindShow {
		d.Kinds = proxyShowKinds
	}
	if sc.statements > 1 {
		d.Flags |= FlagMultiStatement
	}
	if err != nil {
		d.Reason = "invalid tiergate setting"
	}
	return d, err
}
