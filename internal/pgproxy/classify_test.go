package pgproxy

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/tiergate/tiergate/router/sqlroute"
)

// TestCacheFacts: what the query cache learns from a statement's class:
// whether it may be cached, and what a write invalidates.
func TestCacheFacts(t *testing.T) {
	c, err := sqlroute.New(sqlroute.Config{WriteFunctions: []string{"audit_write"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sql       string
		cacheable bool
		written   []string
		all       bool
	}{
		{"SELECT * FROM products WHERE id = 1", true, nil, false},
		{"SELECT now(), * FROM products", false, nil, false},
		{"SELECT * FROM products FOR UPDATE", false, nil, false},
		{"SELECT 1; SELECT 2", false, nil, false},
		{"SET search_path = x", false, nil, false},
		{"UPDATE products SET price = 1 WHERE id = 2", false, []string{"products"}, false},
		{"INSERT INTO orders SELECT * FROM carts", false, []string{"orders"}, false},
		{"TRUNCATE products, orders", false, []string{"products", "orders"}, false},
		{"ALTER TABLE products ADD COLUMN x int", false, []string{"products"}, false},
		{"DO $$ BEGIN DELETE FROM products; END $$", false, nil, true},
		{"CALL refresh_everything()", false, nil, true},
		{"SELECT audit_write(1)", false, nil, true},
		{"SELECT nextval('s')", false, nil, false},
		{"VACUUM", false, nil, true},
		{"this is not sql", false, nil, true},
	} {
		d, err := c.Classify(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		cl := classOf(d, nil)
		if cl.cacheable != tc.cacheable || cl.invalidateAll != tc.all || !slices.Equal(cl.tablesWritten, tc.written) {
			t.Errorf("%s: cacheable %v invalidateAll %v written %v; want %v %v %v", tc.sql, cl.cacheable, cl.invalidateAll, cl.tablesWritten, tc.cacheable, tc.all, tc.written)
		}
	}
}

// FuzzCachedBody: the capture parser never panics, and what it keeps is
// a run of RowDescription/DataRow messages ending in CommandComplete,
// followed in the input only by ReadyForQuery 'I'.
func FuzzCachedBody(f *testing.F) {
	f.Add([]byte("T\x00\x00\x00\x06\x00\x00D\x00\x00\x00\x06\x00\x00C\x00\x00\x00\x0bSELECT 1\x00Z\x00\x00\x00\x05I"), false, false)
	f.Add([]byte("1\x00\x00\x00\x042\x00\x00\x00\x04C\x00\x00\x00\x0bSELECT 0\x00Z\x00\x00\x00\x05I"), true, true)
	f.Add([]byte("E\x00\x00\x00\x04Z\x00\x00\x00\x05I"), false, false)
	f.Fuzz(func(t *testing.T, out []byte, parse, bind bool) {
		body, ok := cachedBody(out, parse, bind)
		if !ok {
			return
		}
		if len(body) < 5 || !bytes.HasSuffix(out, []byte{'Z', 0, 0, 0, 5, 'I'}) || !bytes.Contains(out, body) {
			t.Fatalf("kept %q of %q", body, out)
		}
		for i := 0; i < len(body); {
			typ, n := body[i], int(binary.BigEndian.Uint32(body[i+1:]))
			if typ != 'T' && typ != 'D' && typ != 'C' {
				t.Fatalf("kept a %q message", typ)
			}
			i += 1 + n
			if typ == 'C' && i != len(body) {
				t.Fatal("CommandComplete is not last")
			}
		}
	})
}
