package sqlroute

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// splitInsert splits a multi-row INSERT ... VALUES into one INSERT per
// shard (rowShards[i] is the shard of row i), each keeping its rows in
// order and taking its parameters renumbered from $1.
func splitInsert(sql string, rowShards []int) ([]ShardInsert, error) {
	var shards []int
	for _, s := range rowShards {
		if !slices.Contains(shards, s) {
			shards = append(shards, s)
		}
	}
	slices.Sort(shards)
	out := make([]ShardInsert, 0, len(shards))
	for _, s := range shards {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return nil, err
		}
		ins := tree.Stmts[0].GetStmt().GetInsertStmt()
		sel := ins.GetSelectStmt().GetSelectStmt()
		if sel == nil || len(sel.ValuesLists) != len(rowShards) {
			return nil, fmt.Errorf("the VALUES list changed shape")
		}
		var rows []*pg_query.Node
		for i, row := range sel.ValuesLists {
			if rowShards[i] == s {
				rows = append(rows, row)
			}
		}
		sel.ValuesLists = rows
		var refs []*pg_query.ParamRef
		collectParams(tree.ProtoReflect(), &refs)
		var olds []int
		for _, p := range refs {
			if !slices.Contains(olds, int(p.Number)) {
				olds = append(olds, int(p.Number))
			}
		}
		slices.Sort(olds)
		for _, p := range refs {
			p.Number = int32(slices.Index(olds, int(p.Number)) + 1)
		}
		text, err := pg_query.Deparse(tree)
		if err != nil {
			return nil, err
		}
		out = append(out, ShardInsert{Shard: s, SQL: strings.TrimSpace(text), Params: olds})
	}
	return out, nil
}

func collectParams(m protoreflect.Message, out *[]*pg_query.ParamRef) {
	if p, ok := m.Interface().(*pg_query.ParamRef); ok {
		*out = append(*out, p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				collectParams(l.Get(i).Message(), out)
			}
		} else if !fd.IsMap() {
			collectParams(v.Message(), out)
		}
		return true
	})
}
