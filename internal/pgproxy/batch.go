package pgproxy

import (
	"encoding/binary"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/router/sqlroute"
)

// preparedStmt is a statement a client prepared (Parse). Named statements
// live on the servers under proxyName, which is derived from the text and
// parameter types, so clients preparing the same statement share it on a
// server connection.
type preparedStmt struct {
	proxyName string // "" for the unnamed statement
	tag       uint64 // unnamed statement: identifies this Parse
	parse     []byte // encoded Parse under proxyName, to re-prepare it anywhere
	class     stmtClass
	// query is the text (cache hints); oids and dec are the parameter types
	// and decision, for routing a sharded database's Binds and for fan-outs.
	query string
	oids  []uint32
	dec   sqlroute.Decision
}

// batchItem is one client message of an extended-protocol batch, already
// encoded (with names rewritten) into batch.buf.
type batchItem struct {
	kind       byte // 'P','B','D','E','C','S','H','Q','F'
	start, end int
	stmt       *preparedStmt // 'P': the statement; 'B'/'D': the statement it needs
	unnamed    bool          // 'B'/'D': needs the client's unnamed statement ...
	un         *preparedStmt // ... which is this one
	synth      bool          // 'C': answered by the proxy (CloseComplete)
	sql        string        // 'Q': the query text (sharded databases)
}

// batch collects client messages up to a Sync or Flush (or one Query).
type batch struct {
	buf   []byte
	items []batchItem
	class stmtClass // merged over the statements it executes
	first stmtClass // the first statement's class
	execs int       // Binds and Queries: statements it runs
	// written are the tables its statements write; invalAll: some write
	// touches tables the proxy cannot name (query cache invalidation).
	written  []string
	invalAll bool
}

func (b *batch) reset() {
	if cap(b.buf) > 1<<20 {
		b.buf = nil // do not keep a huge Bind's memory for the session's life
	}
	b.buf = b.buf[:0]
	b.items = b.items[:0]
	b.class = stmtClass{replica: true}
	b.first = stmtClass{}
	b.execs = 0
	b.written = b.written[:0]
	b.invalAll = false
}

func (b *batch) empty() bool { return len(b.items) == 0 }

// add encodes msg and records it.
func (b *batch) add(kind byte, msg pgproto3.FrontendMessage, it batchItem) error {
	start := len(b.buf)
	buf, err := msg.Encode(b.buf)
	if err != nil {
		return err
	}
	b.buf = buf
	it.kind, it.start, it.end = kind, start, len(buf)
	b.items = append(b.items, it)
	return nil
}

// addRaw records already encoded bytes (a shared Parse).
func (b *batch) addRaw(kind byte, raw []byte, it batchItem) {
	start := len(b.buf)
	b.buf = append(b.buf, raw...)
	it.kind, it.start, it.end = kind, start, len(b.buf)
	b.items = append(b.items, it)
}

// merge folds the class of an executed statement into the batch's.
func (b *batch) merge(c stmtClass) {
	b.execs++
	if b.execs == 1 {
		b.first = c
	}
	b.written = append(b.written, c.tablesWritten...)
	b.invalAll = b.invalAll || c.invalidateAll
	b.class.replica = b.class.replica && c.replica
	b.class.write = b.class.write || c.write
	b.class.begin = b.class.begin || c.begin
	b.class.readOnly = b.class.readOnly || c.readOnly
	b.class.session = b.class.session || c.session
	b.class.pin = b.class.pin || c.pin
	b.class.listen = b.class.listen || c.listen
	b.class.clearsPrepared = b.class.clearsPrepared || c.clearsPrepared
	b.class.hint = b.class.hint || c.hint
}

// proxyStmtName is the server-side name of a named statement: a hash of its
// text and parameter types.
func proxyStmtName(query string, oids []uint32) string {
	d := xxhash.New()
	_, _ = d.WriteString(query)
	var tmp [4]byte
	for _, o := range oids {
		binary.BigEndian.PutUint32(tmp[:], o)
		_, _ = d.Write(tmp[:])
	}
	return "tg_" + strconv.FormatUint(d.Sum64(), 16)
}

// pendingKind is what a message sent to the server will be answered with.
type pendingKind uint8

const (
	pParse    pendingKind = iota // ParseComplete
	pBind                        // BindComplete
	pDescribe                    // [ParameterDescription] RowDescription | NoData
	pExecute                     // DataRow* then CommandComplete | EmptyQueryResponse | PortalSuspended
	pClose                       // CloseComplete
	pSync                        // ReadyForQuery
	pQuery                       // anything, then ReadyForQuery
	pSynth                       // answered by the proxy: synth
)

// pending is one answer the session is waiting for, in order.
type pending struct {
	kind    pendingKind
	swallow bool // injected by the proxy: do not relay the answer
	stmt    *preparedStmt
	synth   pgproto3.BackendMessage
}

var (
	synthParseComplete = &pgproto3.ParseComplete{}
	synthCloseComplete = &pgproto3.CloseComplete{}
)
