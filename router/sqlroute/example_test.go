package sqlroute_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/tiergate/tiergate/router/sqlroute"
)

func ExampleClassifier_Classify() {
	c, err := sqlroute.New(sqlroute.Config{WriteFunctions: []string{"billing.charge"}})
	if err != nil {
		panic(err)
	}
	for _, sql := range []string{
		"SELECT * FROM users WHERE id = 42",
		"SELECT * FROM users WHERE id = 7", // same shape: answered from the cache
		"SELECT * FROM jobs FOR UPDATE SKIP LOCKED",
		"WITH x AS (DELETE FROM queue RETURNING *) SELECT * FROM x",
		"SELECT billing.charge(1)",
		"BEGIN READ ONLY",
		"/* tiergate: primary */ SELECT * FROM users",
		"LISTEN jobs",
	} {
		d, _ := c.Classify(sql)
		fmt.Printf("%-7s %-22q %v\n", d.Target, d.Reason, d.Flags)
	}

	d, err := c.Classify("SET tiergate.route = replica")
	fmt.Println(d.Kind, d.Setting.Route, err)
	_, err = c.Classify("SET tiergate.route = sideways")
	fmt.Println(errors.Is(err, sqlroute.ErrProxySetting))

	s := c.Stats()
	fmt.Println("hits", s.Hits, "parses", s.Parses)
	// Output:
	// replica "SELECT"               0
	// replica "SELECT"               0
	// primary "SELECT FOR UPDATE"    write
	// primary "data-modifying CTE"   write
	// primary "write function billing.charge" write|user-function
	// replica "BEGIN READ ONLY"      txn-control|read-only-txn
	// primary "hint"                 hint
	// primary "LISTEN"               write|session-state|listen|pin
	// PROXY SET replica <nil>
	// true
	// hits 1 parses 7
}

func ExampleDigest() {
	a := sqlroute.Digest("SELECT * FROM t WHERE id IN (1, 2, 3)")
	b := sqlroute.Digest("select *  from T where ID in (42) -- comment")
	fmt.Println(a == b)
	fmt.Println(sqlroute.Normalize("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'"))
	// Output:
	// true
	// select * from t where id in ( $? ) and name = $?
}

// The session layer's result cache decides per statement from the flags,
// and reads a hinted TTL from the text only when the hint is there.
func ExampleCacheHintTTL() {
	c, err := sqlroute.New(sqlroute.Config{VolatileFunctions: []string{"app.next_ticket"}})
	if err != nil {
		panic(err)
	}
	const defaultTTL = 10 * time.Second
	for _, sql := range []string{
		"SELECT * FROM products WHERE id = 42",
		"SELECT * FROM events WHERE at > now() - interval '1 hour'",
		"SELECT * FROM events WHERE day = 'today'",
		"SELECT app.next_ticket()",
		"SELECT price_of(id) FROM products",
		"/* tiergate: replica */ /* tiergate: cache ttl=30s */ SELECT price_of(id) FROM products",
		"/* tiergate: cache */ /* tiergate: nocache */ SELECT 1",
	} {
		d, _ := c.Classify(sql)
		cache, ttl := false, defaultTTL
		switch {
		case d.Target != sqlroute.Replica || d.Has(sqlroute.FlagNoCacheHint) || d.Has(sqlroute.FlagVolatile):
			// not cached
		case d.Has(sqlroute.FlagCacheHint):
			cache = true
			if t, _ := sqlroute.CacheHintTTL(sql); t > 0 {
				ttl = t
			}
		case !d.Has(sqlroute.FlagUserFunction):
			cache = true
		}
		fmt.Printf("%-5v %-4v %v\n", cache, ttl, d.Flags)
	}
	// Output:
	// true  10s  0
	// false 10s  volatile
	// false 10s  volatile
	// false 10s  volatile|user-function
	// false 10s  user-function
	// true  30s  hint|user-function|cache-hint
	// false 10s  cache-hint|nocache-hint
}
