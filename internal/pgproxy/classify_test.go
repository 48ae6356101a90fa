package pgproxy

import (
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
