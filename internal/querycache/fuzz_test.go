package querycache

import (
	"errors"
	"testing"
)

func FuzzApplyRemote(f *testing.F) {
	f.Add(encodeMsg(msgVersion, 1, 1, remoteOp{db: "app", tables: []string{"products", "a.b"}}, remoteOp{db: "other", all: true}))
	f.Add(encodeMsg(msgVersion, 2, 7))
	f.Add([]byte{})
	f.Add([]byte{msgVersion + 1})
	f.Add(append(encodeMsg(msgVersion, 1, 1)[:17:17], 0xff, 0xff, 0xff, 0x0f))

	c := newTestCache(f, Config{}, newFakeClock())
	d := c.DB("app")
	put(d, 1, "k", "v", []string{"products"}, 0) // creates the table
	f.Fuzz(func(t *testing.T, msg []byte) {
		err := c.ApplyRemote(msg)
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Fatalf("ApplyRemote = %v, want nil or ErrBadMessage", err)
		}
		m, derr := decodeMessage(msg)
		if (derr == nil) != (err == nil) {
			t.Fatalf("decodeMessage = %v, ApplyRemote = %v", derr, err)
		}
		if derr != nil || m.version != msgVersion {
			return
		}
		again, err := decodeMessage(encodeMsg(m.version, m.origin, m.seq, m.ops...))
		if err != nil {
			t.Fatalf("re-encoded message: %v", err)
		}
		if again.origin != m.origin || again.seq != m.seq || !opsEqual(again.ops, m.ops) {
			t.Fatalf("round trip: %+v, want %+v", again, m)
		}
	})
}
