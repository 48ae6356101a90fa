package cluster

import (
	"encoding/binary"
	"testing"
)

// TestHandleTopic checks the topic message framing: a registered handler
// gets the sender and payload of well-formed messages from configured
// peers only, and malformed ones are dropped without a panic.
func TestHandleTopic(t *testing.T) {
	n := &Node{cfg: Config{NodeName: "p1"}, peers: []string{"p1", "p2", "p3"}}
	type got struct {
		from    string
		payload string
	}
	var calls []got
	n.Handle('x', func(from string, payload []byte) { calls = append(calls, got{from, string(payload)}) })
	msg := func(topic byte, from, payload string) []byte {
		b := []byte{topic}
		b = binary.AppendUvarint(b, uint64(len(from)))
		b = append(b, from...)
		return append(b, payload...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []got
	}{
		{"peer", msg('x', "p2", "hello"), []got{{"p2", "hello"}}},
		{"empty payload", msg('x', "p3", ""), []got{{"p3", ""}}},
		{"own message", msg('x', "p1", "echo"), nil},
		{"not a peer", msg('x', "stranger", "hi"), nil},
		{"other topic", msg('y', "p2", "hi"), nil},
		{"empty", nil, nil},
		{"topic only", []byte{'x'}, nil},
		{"name longer than message", []byte{'x', 50, 'p'}, nil},
		{"bad varint", []byte{'x', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			n.handleTopic(tc.in)
			if len(calls) != len(tc.want) {
				t.Fatalf("calls %v, want %v", calls, tc.want)
			}
			for i := range calls {
				if calls[i] != tc.want[i] {
					t.Fatalf("call %d: %v, want %v", i, calls[i], tc.want[i])
				}
			}
		})
	}
}
