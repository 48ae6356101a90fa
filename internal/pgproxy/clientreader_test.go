package pgproxy

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// chunked returns data in reads of at most n bytes.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func encodeAll(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestClientReader reads the same message stream in differently sized
// reads and checks every message decodes as sent, and that a drained
// reader falls back to its small buffer.
func TestClientReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 20000)
	msgs := []pgproto3.FrontendMessage{
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("7")}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: string(bytes.Repeat([]byte("a"), 700))}, // bigger than the small buffer
		&pgproto3.CopyData{Data: big},                                   // bigger than a pooled buffer
		&pgproto3.CopyDone{},
		&pgproto3.Flush{},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"},
		&pgproto3.Terminate{},
	}
	wire := encodeAll(t, msgs...)
	for _, n := range []int{1, 3, 7, 100, 511, 512, 513, 4096, 1 << 20} {
		r := newClientReader(&chunked{data: wire, n: n}, 1<<20)
		for i, want := range msgs {
			got, err := r.receive()
			if err != nil {
				t.Fatalf("reads of %d: message %d: %v", n, i, err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("reads of %d: message %d: got %#v, want %#v", n, i, got, want)
			}
		}
		if _, err := r.receive(); !errors.Is(err, io.EOF) {
			t.Fatalf("reads of %d: after the last message: %v, want EOF", n, err)
		}
		if &r.b[0] != &r.small[0] || r.big != nil {
			t.Fatalf("reads of %d: a drained reader still holds a big buffer", n)
		}
	}
}

// normalize makes decoded and constructed messages comparable (nil vs
// empty slices).
func normalize(m pgproto3.FrontendMessage) any {
	b, _ := m.Encode(nil)
	return b
}

func TestClientReaderErrors(t *testing.T) {
	valid := encodeAll(t, &pgproto3.Query{String: "SELECT 1"})
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int
		wantErr error
	}{
		{"too big", encodeAll(t, &pgproto3.Query{String: string(make([]byte, 2000))}), 1024, errProtocol},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, 1024, errProtocol},
		{"unknown type", []byte{'Z', 0, 0, 0, 4}, 1024, errProtocol},
		{"password outside auth", []byte{'p', 0, 0, 0, 5, 0}, 1024, errProtocol},
		{"malformed body", []byte{'Q', 0, 0, 0, 6, 'a', 'b'}, 1024, errProtocol}, // no terminating NUL
		{"cut short", valid[:len(valid)-2], 1024, io.ErrUnexpectedEOF},
		{"header cut short", valid[:3], 1024, io.ErrUnexpectedEOF},
		{"nothing", nil, 1024, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newClientReader(bytes.NewReader(tc.in), tc.max)
			_, err := r.receive()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestClientReaderAuth: password messages decode by the announced type.
func TestClientReaderAuth(t *testing.T) {
	for _, tc := range []struct {
		auth uint32
		msg  pgproto3.FrontendMessage
	}{
		{pgproto3.AuthTypeCleartextPassword, &pgproto3.PasswordMessage{Password: "pw"}},
		{pgproto3.AuthTypeMD5Password, &pgproto3.PasswordMessage{Password: "md5abc"}},
		{pgproto3.AuthTypeSASL, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")}},
		{pgproto3.AuthTypeSASLContinue, &pgproto3.SASLResponse{Data: []byte("c=biws,r=abc,p=xyz")}},
	} {
		r := newClientReader(bytes.NewReader(encodeAll(t, tc.msg)), 1024)
		if err := r.setAuthType(tc.auth); err != nil {
			t.Fatal(err)
		}
		got, err := r.receive()
		if err != nil || !reflect.DeepEqual(normalize(got), normalize(tc.msg)) {
			t.Fatalf("auth %d: got %#v, %v", tc.auth, got, err)
		}
	}
	if err := newClientReader(nil, 1).setAuthType(7); !errors.Is(err, errUnsupported) {
		t.Fatalf("GSS: %v", err)
	}
}

// FuzzClientReader compares the reader with pgproto3.Backend on the same
// bytes: same messages, and an error where it errs.
func FuzzClientReader(f *testing.F) {
	f.Add(encodeAll(f, &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Sync{}), uint8(5))
	f.Add(encodeAll(f, &pgproto3.Parse{Query: "SELECT $1"}, &pgproto3.Bind{Parameters: [][]byte{nil, []byte("x")}}, &pgproto3.Execute{MaxRows: 3}), uint8(1))
	f.Add([]byte{'B', 0, 0, 0, 4}, uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const max = 4096
		ours := newClientReader(&chunked{data: data, n: int(chunk%64) + 1}, max)
		theirs := pgproto3.NewBackend(bytes.NewReader(data), io.Discard)
		theirs.SetMaxBodyLen(max)
		for i := 0; i < 64; i++ {
			a, errA := ours.receive()
			b, errB := theirs.Receive()
			if _, pw := b.(*pgproto3.PasswordMessage); pw && errors.Is(errA, errProtocol) {
				return // after login a password message is a protocol violation (pgproto3 decodes it)
			}
			if (errA == nil) != (errB == nil) {
				t.Fatalf("message %d: ours %v (%T), pgproto3 %v (%T)", i, errA, a, errB, b)
			}
			if errA != nil {
				return
			}
			if !bytes.Equal(normalize(a).([]byte), normalize(b).([]byte)) {
				t.Fatalf("message %d: ours %#v, pgproto3 %#v", i, a, b)
			}
		}
	})
}
