package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tiergate/tiergate/shardmap"
)

// Names of what the resharder creates on the source shards. Everything
// lives in one schema, so cleanup is DROP SCHEMA ... CASCADE (which also
// drops the triggers through their functions).
const (
	captureSchema = "tiergate_reshard"
	changeLog     = captureSchema + ".change_log" // (id, tbl, key): one row per changed key
	refDirty      = captureSchema + ".ref_dirty"  // (tbl): reference tables written since copied
	// skipSetting, set to "on" in the resharder's own sessions, keeps its
	// writes out of the change log.
	skipSetting = "tiergate.reshard_skip"
	// appName is the application_name of the resharder's sessions.
	appName = "tiergate-reshard"
)

// quoteIdent quotes one SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteTable quotes a table name as configured: "t" or "schema.t".
func quoteTable(name string) string {
	if schema, table, ok := strings.Cut(name, "."); ok {
		return quoteIdent(schema) + "." + quoteIdent(table)
	}
	return quoteIdent(name)
}

// quoteLiteral quotes a string constant. Sessions run with
// standard_conforming_strings on (see connect), so only quotes are doubled.
// PostgreSQL text cannot hold NUL, so a NUL is an error.
func quoteLiteral(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%w: a NUL byte cannot be a SQL literal", ErrBackend)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// sqlType is the SQL type keys of type t are cast to.
func sqlType(t shardmap.KeyType) string {
	switch t {
	case shardmap.Text:
		return "text"
	case shardmap.UUID:
		return "uuid"
	}
	return "bigint"
}

// keyLiteral is a key in its text form as a typed SQL constant.
func keyLiteral(t shardmap.KeyType, text string) (string, error) {
	q, err := quoteLiteral(text)
	if err != nil {
		return "", err
	}
	return q + "::" + sqlType(t), nil
}

// keyText is the text form of k, as key::text prints it.
func keyText(k shardmap.Key) string {
	switch k.Type() {
	case shardmap.Text:
		return k.Text()
	case shardmap.Bigint, shardmap.UUID:
		return k.String()
	}
	return ""
}

// keyArray is keys as a typed SQL array constant, for COPY (SELECT ...)
// statements, which take no parameters.
func keyArray(t shardmap.KeyType, keys []string) (string, error) {
	var b strings.Builder
	b.WriteString("ARRAY[")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		q, err := quoteLiteral(k)
		if err != nil {
			return "", err
		}
		b.WriteString(q)
	}
	b.WriteString("]::")
	b.WriteString(sqlType(t))
	b.WriteString("[]")
	return b.String(), nil
}

// sessionParams make every session print and compare values the same way
// on every shard, so row checksums (ROW(...)::text) agree.
var sessionParams = map[string]string{
	"application_name":            appName,
	"standard_conforming_strings": "on",
	"DateStyle":                   "ISO, MDY",
	"IntervalStyle":               "postgres",
	"TimeZone":                    "UTC",
	"extra_float_digits":          "1",
	"bytea_output":                "hex",
	skipSetting:                   "on",
}

// connect opens a session on dsn with sessionParams.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("reshard: %w", err)
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("reshard: connect %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return c, nil
}

// closeConn closes c, bounded in time even when ctx is done.
func closeConn(c *pgx.Conn) {
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = c.Close(ctx)
	}
}

// column is one copied column of a table.
type column struct {
	Name string
	Type string // format_type(atttypid, atttypmod)
}

// tableColumns returns the columns the resharder copies (not dropped, not
// generated), in attribute order, or ErrSchema when the table is missing.
func tableColumns(ctx context.Context, c *pgx.Conn, table string) ([]column, error) {
	rows, err := c.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, quoteTable(table))
	if err != nil {
		return nil, fmt.Errorf("reshard: columns of %s: %w", table, err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var col column
		err := r.Scan(&col.Name, &col.Type)
		return col, err
	})
	if err != nil {
		return nil, fmt.Errorf("reshard: columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: table %s does not exist", ErrSchema, table)
	}
	return cols, nil
}

// needsText reports whether a table must be copied in the text format:
// when a column (or a domain's base type) is a composite, or an array of a
// composite or of a user-defined type, whose binary form embeds type OIDs
// that differ between servers.
func needsText(ctx context.Context, c *pgx.Conn, table string) (bool, error) {
	var text bool
	err := c.QueryRow(ctx, `
		SELECT coalesce(bool_or(bt.typtype = 'c' OR (bt.typcategory = 'A' AND (et.typtype = 'c' OR et.oid >= 16384))), false)
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
		LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''`, quoteTable(table)).Scan(&text)
	if err != nil {
		return false, fmt.Errorf("reshard: column types of %s: %w", table, err)
	}
	return text, nil
}

// columnList is the quoted, comma-separated column names.
func columnList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.Name)
	}
	return strings.Join(names, ", ")
}

// sameColumns reports ErrSchema unless target has every source column with
// the same type (binary COPY needs identical types).
func sameColumns(table, source, target string, src, dst []column) error {
	types := make(map[string]string, len(dst))
	for _, c := range dst {
		types[c.Name] = c.Type
	}
	var problems []string
	for _, c := range src {
		switch t, ok := types[c.Name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("column %s is missing", c.Name))
		case t != c.Type:
			problems = append(problems, fmt.Sprintf("column %s is %s, on %s %s", c.Name, t, source, c.Type))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: table %s on %s: %s", ErrSchema, table, target, strings.Join(problems, ", "))
	}
	return nil
}

// retryable reports whether err is worth retrying a batch for: a
// serialization failure, a deadlock, or a query cancelled by a conflict
// with recovery on a replica.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01":
			return true
		}
	}
	return false
}

// connCache is a session opened on first use and reopened after it broke.
type connCache struct {
	dsn string
	c   *pgx.Conn
}

func (cc *connCache) get(ctx context.Context) (*pgx.Conn, error) {
	if cc.c != nil && !cc.c.IsClosed() {
		return cc.c, nil
	}
	c, err := connect(ctx, cc.dsn)
	if err != nil {
		return nil, err
	}
	cc.c = c
	return c, nil
}

func (cc *connCache) close() {
	closeConn(cc.c)
	cc.c = nil
}
