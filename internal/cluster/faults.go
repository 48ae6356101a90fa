package cluster

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrPartitioned is returned by dials and I/O across a pair of proxies that
// Faults has cut apart.
var ErrPartitioned = errors.New("cluster: network partitioned (fault injection)")

// Faults cuts the gossip and Raft traffic between chosen proxies, for tests
// of partitions inside one process. Each proxy drops what it would send to
// a blocked peer and fails dials and established connections to it; cuts
// are symmetric. A nil *Faults lets everything through. Safe for concurrent
// use.
type Faults struct {
	mu      sync.RWMutex
	names   map[string]string // address -> proxy name
	blocked map[[2]string]bool
}

// NewFaults returns a fault layer with nothing blocked.
func NewFaults() *Faults {
	return &Faults{names: map[string]string{}, blocked: map[[2]string]bool{}}
}

// Register tells the fault layer which addresses (gossip, Raft) belong to
// proxy name. New registers a node's own addresses automatically.
func (f *Faults) Register(name string, addrs ...string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range addrs {
		f.names[a] = name
	}
}

// Isolate cuts name off from every other registered proxy.
func (f *Faults) Isolate(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, other := range f.proxiesLocked() {
		if other != name {
			f.blocked[pair(name, other)] = true
		}
	}
}

// Partition splits the proxies into groups that cannot reach each other;
// proxies not named in any group stay connected to everyone.
func (f *Faults) Partition(groups ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					f.blocked[pair(a, b)] = true
				}
			}
		}
	}
}

// Heal removes every cut.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocked)
}

// Blocked reports whether traffic between proxies a and b is cut.
func (f *Faults) Blocked(a, b string) bool {
	if f == nil {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.blocked[pair(a, b)]
}

func (f *Faults) proxiesLocked() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range f.names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// allowed reports whether proxy from may send to address to.
func (f *Faults) allowed(from, to string) bool {
	if f == nil {
		return true
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	name, ok := f.names[to]
	if !ok {
		return true
	}
	return !f.blocked[pair(from, name)]
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// faultConn fails every read and write once its two ends are cut apart.
type faultConn struct {
	net.Conn
	f        *Faults
	from, to string
}

func (f *Faults) wrap(from, to string, c net.Conn) net.Conn {
	if f == nil || c == nil {
		return c
	}
	return &faultConn{Conn: c, f: f, from: from, to: to}
}

func (c *faultConn) Read(b []byte) (int, error) {
	if !c.f.allowed(c.from, c.to) {
		_ = c.Conn.Close()
		return 0, ErrPartitioned
	}
	return c.Conn.Read(b)
}

func (c *faultConn) Write(b []byte) (int, error) {
	if !c.f.allowed(c.from, c.to) {
		_ = c.Conn.Close()
		return 0, ErrPartitioned
	}
	return c.Conn.Write(b)
}

// faultTransport is memberlist's NetTransport with the fault layer in
// front of everything it sends.
type faultTransport struct {
	*memberlist.NetTransport
	self string
	f    *Faults
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.f.allowed(t.self, addr) {
		return time.Now(), nil // dropped on the wire
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if !t.f.allowed(t.self, a.Addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.f.allowed(t.self, a.Addr) {
		return nil, ErrPartitioned
	}
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return t.f.wrap(t.self, a.Addr, c), nil
}
