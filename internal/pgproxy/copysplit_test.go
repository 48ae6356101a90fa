package pgproxy

import (
	"bytes"
	"testing"

	"github.com/tiergate/tiergate/router/sqlroute"
	"github.com/tiergate/tiergate/shardmap"
)

func copyTestSplit(t testing.TB, format string, header bool) *sqlroute.CopySplit {
	m := testShardMap(t, webappSharding(3))
	tbl, _ := m.Table("users")
	sp := &sqlroute.CopySplit{Table: tbl, KeyCol: 1, Cols: 3, Format: format, Delimiter: '\t', Null: `\N`, Quote: '"', Escape: '"', Header: header}
	if format == "csv" {
		sp.Delimiter, sp.Null = ',', ""
	}
	return sp
}

func TestCopySplitterText(t *testing.T) {
	tests := []struct {
		name, format string
		header       bool
		data         string
		rows         int64
		err          bool
	}{
		{"text", "text", false, "a\t1\tx\nb\t2\ty\nc\t3\tz\n", 3, false},
		{"text no final newline", "text", false, "a\t1\tx\nb\t2\ty", 2, false},
		{"text escapes", "text", false, "a\\tb\t4\tx\\ny\n", 1, false},
		{"text end marker", "text", false, "a\t1\tx\n\\.\nignored\n", 1, false},
		{"text null key", "text", false, "a\t\\N\tx\n", 0, true},
		{"text bad key", "text", false, "a\tone\tx\n", 0, true},
		{"text short row", "text", false, "a\n", 0, true},
		{"csv", "csv", true, "n,k,v\n\"a,b\",5,\"multi\nline\"\nc,6,\"q\"\"uote\"\n", 2, false},
		{"csv quoted key", "csv", false, "a,\"7\",x\n", 1, false},
		{"csv empty key is null", "csv", false, "a,,x\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopySplitter(copyTestSplit(t, tc.format, tc.header), 3)
			var err error
			// Feed byte by byte: rows straddle CopyData messages.
			for i := 0; i < len(tc.data) && err == nil; i++ {
				err = c.feed([]byte{tc.data[i]})
			}
			if err == nil {
				err = c.finish()
			}
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if tc.err {
				return
			}
			var total int64
			for _, n := range c.rows {
				total += n
			}
			if total != tc.rows {
				t.Fatalf("%d rows, want %d", total, tc.rows)
			}
			if tc.header {
				for s, out := range c.out {
					if !bytes.HasPrefix(out, []byte("n,k,v\n")) {
						t.Errorf("shard %d lacks the header: %q", s, out)
					}
				}
			}
		})
	}
}

func TestCopySplitterBinary(t *testing.T) {
	var b []byte
	b = append(b, binaryCopySignature...)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	m := testShardMap(t, webappSharding(3))
	want := make([]int64, 3)
	for k := int64(1); k <= 50; k++ {
		b = append(b, 0, 3)                   // fields
		b = append(b, 0, 0, 0, 1, 'n')        // name
		b = append(b, 0, 0, 0, 8)             // key
		b = append(b, int8bytes(k)...)        //
		b = append(b, 0xff, 0xff, 0xff, 0xff) // NULL
		s, _ := m.ShardFor("users", shardmap.Int64Key(k))
		want[s]++
	}
	b = append(b, 0xff, 0xff)
	for _, chunk := range []int{1, 7, 64, len(b)} {
		c := newCopySplitter(copyTestSplit(t, "binary", false), 3)
		for i := 0; i < len(b); i += chunk {
			if err := c.feed(b[i:min(i+chunk, len(b))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.finish(); err != nil || !c.ended {
			t.Fatalf("finish: %v ended=%v", err, c.ended)
		}
		for s := range want {
			if c.rows[s] != want[s] || !bytes.HasPrefix(c.out[s], binaryCopySignature) || !bytes.HasSuffix(c.out[s], []byte{0xff, 0xff}) {
				t.Fatalf("chunk %d: shard %d: %d rows, want %d", chunk, s, c.rows[s], want[s])
			}
		}
	}
}

func int8bytes(v int64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// FuzzCopySplitter: any COPY data, in any chunking, is split or refused
// without a panic, and what is split adds up to the rows counted.
func FuzzCopySplitter(f *testing.F) {
	f.Add("a\t1\tx\nb\t2\ty\n", "text", uint8(3))
	f.Add("n,k,v\n\"a,b\",5,\"multi\nline\"\n", "csv", uint8(1))
	f.Add("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x01n\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x05\xff\xff\xff\xff\xff\xff", "binary", uint8(5))
	f.Fuzz(func(t *testing.T, data, format string, chunk uint8) {
		if format != "text" && format != "csv" && format != "binary" {
			return
		}
		c := newCopySplitter(copyTestSplit(t, format, format == "csv"), 3)
		step := int(chunk%16) + 1
		var err error
		for i := 0; i < len(data) && err == nil; i += step {
			err = c.feed([]byte(data[i:min(i+step, len(data))]))
		}
		if err == nil {
			_ = c.finish()
		}
	})
}
