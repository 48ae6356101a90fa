package failover_test

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/cluster"
	"github.com/tiergate/tiergate/internal/failover"
)

// Example shows how the proxy wires the cluster node and the manager, and
// asks the fence before a write. (Compiled, not run: it needs servers.)
func Example() {
	ctx := context.Background()
	log := zap.NewNop()
	var cc cluster.Config
	var fc failover.Config
	cc.SetDefaults()
	fc.SetDefaults()
	node, err := cluster.New(cc, cluster.Options{Logger: log.Named("cluster")})
	if err != nil {
		panic(err)
	}
	mgr, err := failover.New(fc, node, failover.Options{
		Logger: log.Named("failover"),
		OnChange: func(c failover.Change) {
			for _, n := range c.Demoted {
				fmt.Println("close every pooled connection to", n.Address)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	go func() { _ = node.Run(ctx) }()
	go func() { _ = mgr.Run(ctx) }()

	tgt, err := mgr.CheckWrite("app")
	var fe *failover.FencedError
	switch {
	case errors.As(err, &fe):
		fmt.Println("answer SQLSTATE 25006 (retryable):", fe.Reason)
	case err != nil:
		fmt.Println("unknown shard")
	default:
		fmt.Printf("forward to %s (%s), connection tagged with term %d\n", tgt.Node, tgt.Addr, tgt.Term)
	}
}
