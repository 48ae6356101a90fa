package sqlroute_test

import (
	"errors"
	"fmt"

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
	// primary "write function billing.charge" write
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
