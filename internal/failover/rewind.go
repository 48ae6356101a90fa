package failover

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Rewinder turns a stale node back into a replica. It needs host access to
// the node's data directory, so it is supplied by whoever owns the hosts:
// an operator script (CommandRewinder) or, in tests, the harness.
type Rewinder interface {
	// Rewind stops req.Node (cleanly, if it runs), runs pg_rewind with
	// --source-server=req.SourceConninfo, writes standby.signal and
	// primary_conninfo = req.PrimaryConninfo, restores the node's own
	// settings that pg_rewind copied over from the source (port,
	// listen_addresses, ...), and starts it. It returns when the server
	// accepts connections, or with an error.
	Rewind(ctx context.Context, req RewindRequest) error
}

// RewindRequest describes one rejoin.
type RewindRequest struct {
	Shard   string
	Node    NodeConfig // the node to rewind
	Primary NodeConfig // the current primary (the rewind source)
	// SourceConninfo is a libpq connection string to the primary for
	// pg_rewind --source-server.
	SourceConninfo string
	// PrimaryConninfo is the primary_conninfo the node must stream with.
	PrimaryConninfo string
}

// CommandRewinder runs an operator command for Rewind, with the request in
// its environment: TIERGATE_SHARD, TIERGATE_NODE, TIERGATE_NODE_ADDRESS,
// TIERGATE_PRIMARY, TIERGATE_PRIMARY_ADDRESS, TIERGATE_SOURCE_CONNINFO and
// TIERGATE_PRIMARY_CONNINFO. A typical script, run on (or via ssh to) the
// node's host:
//
//	pg_ctl -D "$PGDATA" stop -m fast || true
//	pg_rewind -D "$PGDATA" --source-server="$TIERGATE_SOURCE_CONNINFO"
//	cp "$PGDATA/../postgresql.conf.local" "$PGDATA/postgresql.conf"  # pg_rewind copied the source's
//	touch "$PGDATA/standby.signal"
//	echo "primary_conninfo = '$TIERGATE_PRIMARY_CONNINFO'" >> "$PGDATA/postgresql.auto.conf"
//	pg_ctl -D "$PGDATA" -w start
type CommandRewinder struct {
	Command []string
}

// Rewind runs the command and returns its output with any failure.
func (r *CommandRewinder) Rewind(ctx context.Context, req RewindRequest) error {
	if len(r.Command) == 0 {
		return ErrNoRewinder
	}
	cmd := exec.CommandContext(ctx, r.Command[0], r.Command[1:]...)
	cmd.Env = append(os.Environ(),
		"TIERGATE_SHARD="+req.Shard,
		"TIERGATE_NODE="+req.Node.Name,
		"TIERGATE_NODE_ADDRESS="+req.Node.Address,
		"TIERGATE_PRIMARY="+req.Primary.Name,
		"TIERGATE_PRIMARY_ADDRESS="+req.Primary.Address,
		"TIERGATE_SOURCE_CONNINFO="+req.SourceConninfo,
		"TIERGATE_PRIMARY_CONNINFO="+req.PrimaryConninfo,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rejoin_command %s: %w\n%s", r.Command[0], err, shorten(string(out), 2000))
	}
	return nil
}
