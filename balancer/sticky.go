package balancer

import (
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// StickyCookie pins a client to the backend named in a cookie. The engine
// passes the cookie value as PickInfo.Key; when it names an eligible
// member (by StickyID) that member is picked, otherwise a weighted random
// one is, and the engine re-issues the cookie for it. The cookie carries an
// opaque ID, never the backend's address.
const StickyCookie = "sticky_cookie"

// StickyID returns the opaque cookie value for a backend ID: 16 hex digits
// of a hash of the ID. It is stable across restarts and reloads.
func StickyID(id string) string {
	return strconv.FormatUint(xxhash.Sum64String("tiergate-sticky:"+id)|1<<63, 16)
}

// stickyHash parses a cookie value made by StickyID.
func stickyHash(key []byte) (uint64, bool) {
	if len(key) != 16 {
		return 0, false
	}
	var v uint64
	for _, c := range key {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

type sticky struct {
	ids      map[uint64]int // StickyID hash -> member index
	fallback random
}

var _ policy = (*sticky)(nil)

func newSticky(s *snapshot) policy {
	p := &sticky{ids: make(map[uint64]int, len(s.backends))}
	for i, b := range s.backends {
		h, _ := stickyHash([]byte(StickyID(b.key())))
		p.ids[h] = i
	}
	return p
}

func (p *sticky) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	if h, ok := stickyHash(info.Key); ok {
		if i, ok := p.ids[h]; ok && s.eligible(i, info.Exclude, now, panicking) {
			return i
		}
	}
	return sample(s, &p.fallback, info, now, panicking)
}
