package pgproxy

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// mergeFanout combines the shards' rows of a multi-shard statement into
// what the client gets, with the RowDescription to send (nil: no rows).
func (s *session) mergeFanout(f *fanout) (*pgproto3.RowDescription, [][][]byte, error) {
	desc := f.res[0].portalDesc()
	var rows [][][]byte
	for _, r := range f.res {
		rows = append(rows, r.rows...)
	}
	return desc, rows, nil
}
