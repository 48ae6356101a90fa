package httpcache

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// entryOverhead approximates the bookkeeping bytes of an entry beyond its
// header and body bytes, so that many tiny entries still count.
const entryOverhead = 256

// Entry is one stored response: status, header fields, body and the
// timestamps its freshness is computed from. It is immutable once stored
// and safe to serve from many goroutines at once; a refresh replaces it
// with a new Entry rather than changing it.
type Entry struct {
	status int
	fields []field // replayed header fields, in the origin's order
	body   []byte

	etag            []byte // ETag value as sent, or nil
	lastModifiedRaw []byte // Last-Modified value as sent, or nil
	lastModified    time.Time

	varyNames     []string // request headers named by Vary (canonical form)
	varyValues    []string // their normalised values in the stored request
	surrogateKeys []string

	responseTime time.Time     // when the response was received
	initialAge   time.Duration // corrected_initial_age (RFC 9111 4.2.3)
	lifetime     time.Duration // freshness lifetime (RFC 9111 4.2.1)
	swr, sie     time.Duration // stale-while-revalidate / stale-if-error windows
	noCache      bool          // must be revalidated before every use
	authOK       bool          // may answer requests carrying Authorization
	size         int           // weight in bytes
}

// field is one stored header field; name and value share one buffer.
type field struct{ name, value []byte }

// Status is the stored response's status code.
func (e *Entry) Status() int { return e.status }

// Body is the stored body. It is shared by every request served from the
// entry: callers must not modify it.
func (e *Entry) Body() []byte { return e.body }

// Size is the entry's weight against max_size, in bytes.
func (e *Entry) Size() int { return e.size }

// Header returns the first stored value of the header name
// (case-insensitive), or nil. The value must not be modified.
func (e *Entry) Header(name string) []byte {
	for _, f := range e.fields {
		if bytes.EqualFold(f.name, []byte(name)) {
			return f.value
		}
	}
	return nil
}

// Age is the entry's current age at now (RFC 9111 4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	return max(0, e.initialAge+now.Sub(e.responseTime))
}

// Lifetime is the entry's freshness lifetime.
func (e *Entry) Lifetime() time.Duration { return e.lifetime }

// fresh reports whether the entry may be served at age without contacting
// the origin.
func (e *Entry) fresh(age time.Duration) bool {
	return !e.noCache && age < e.lifetime
}

// hasValidator reports whether the origin can answer a conditional request
// for the entry.
func (e *Entry) hasValidator() bool {
	return e.etag != nil || e.lastModifiedRaw != nil
}

// keepFor is how long after responseTime the entry remains of any use;
// 0 means until evicted (a validator lets it be revalidated at any age).
func (e *Entry) keepFor() time.Duration {
	if e.hasValidator() {
		return 0
	}
	return max(time.Second, e.lifetime-e.initialAge+max(e.swr, e.sie))
}

// matches reports whether the request selects this variant: every header
// named by the stored Vary has the same normalised value (RFC 9111 4.1).
// scratch is reused for the normalised values.
func (e *Entry) matches(h *fasthttp.RequestHeader, scratch []byte) ([]byte, bool) {
	for i, name := range e.varyNames {
		scratch = appendVaryValue(scratch[:0], h, name)
		if string(scratch) != e.varyValues[i] {
			return scratch, false
		}
	}
	return scratch, true
}

// sameVariant reports whether two entries were stored for the same
// selecting header values.
func (e *Entry) sameVariant(o *Entry) bool {
	if len(e.varyNames) != len(o.varyNames) {
		return false
	}
	for i := range e.varyNames {
		if e.varyNames[i] != o.varyNames[i] || e.varyValues[i] != o.varyValues[i] {
			return false
		}
	}
	return true
}

// hasSurrogateKey reports whether the entry was tagged with key.
func (e *Entry) hasSurrogateKey(key string) bool {
	for _, k := range e.surrogateKeys {
		if k == key {
			return true
		}
	}
	return false
}

// skipStored lists response header fields never stored or replayed:
// hop-by-hop fields, fields the cache or the server recomputes, and our own.
var skipStored = []string{
	fasthttp.HeaderConnection, "Keep-Alive", "Proxy-Connection", fasthttp.HeaderTE,
	fasthttp.HeaderTrailer, fasthttp.HeaderTransferEncoding, fasthttp.HeaderUpgrade,
	fasthttp.HeaderProxyAuthenticate, fasthttp.HeaderProxyAuthorization,
	fasthttp.HeaderContentLength, fasthttp.HeaderDate, fasthttp.HeaderAge,
	fasthttp.HeaderSetCookie, HeaderXCache,
}

// skipUpdated lists the fields a 304 must not change in the stored
// response (RFC 9111 3.2), on top of skipStored.
var skipUpdated = []string{
	fasthttp.HeaderContentEncoding, fasthttp.HeaderContentRange, fasthttp.HeaderContentType,
}

func inList(name []byte, list []string) bool {
	for _, s := range list {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	return false
}

// connectionListed reports whether name is listed in the Connection header
// value conn (such fields are hop-by-hop).
func connectionListed(name, conn []byte) bool {
	for len(conn) > 0 {
		var tok []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			tok, conn = conn[:i], conn[i+1:]
		} else {
			tok, conn = conn, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), name) {
			return true
		}
	}
	return false
}

// fieldSet accumulates header fields in one backing buffer.
type fieldSet struct {
	buf   []byte
	spans [][4]int
}

func (s *fieldSet) add(name, value []byte) {
	n0 := len(s.buf)
	s.buf = append(s.buf, name...)
	v0 := len(s.buf)
	s.buf = append(s.buf, value...)
	s.spans = append(s.spans, [4]int{n0, v0, v0, len(s.buf)})
}

func (s *fieldSet) fields() []field {
	out := make([]field, len(s.spans))
	for i, sp := range s.spans {
		out[i] = field{name: s.buf[sp[0]:sp[1]:sp[1]], value: s.buf[sp[2]:sp[3]:sp[3]]}
	}
	return out
}

// collectFields copies the storable fields of h.
func collectFields(h *fasthttp.ResponseHeader) []field {
	var s fieldSet
	conn := h.Peek(fasthttp.HeaderConnection)
	for k, v := range h.All() {
		if inList(k, skipStored) || (len(conn) > 0 && connectionListed(k, conn)) {
			continue
		}
		s.add(k, v)
	}
	return s.fields()
}

// mergeFields applies the fields of a 304 to the stored ones: each field
// name present in the 304 replaces all stored fields of that name.
func mergeFields(stored []field, h *fasthttp.ResponseHeader) []field {
	var s fieldSet
	conn := h.Peek(fasthttp.HeaderConnection)
	updated := func(name []byte) bool {
		if inList(name, skipStored) || inList(name, skipUpdated) {
			return false
		}
		for k := range h.All() {
			if bytes.EqualFold(k, name) {
				return true
			}
		}
		return false
	}
	for _, f := range stored {
		if !updated(f.name) {
			s.add(f.name, f.value)
		}
	}
	for k, v := range h.All() {
		if inList(k, skipStored) || inList(k, skipUpdated) || (len(conn) > 0 && connectionListed(k, conn)) {
			continue
		}
		s.add(k, v)
	}
	return s.fields()
}

// fieldValues returns the values of every field called name.
func fieldValues(fields []field, name string) [][]byte {
	var out [][]byte
	for _, f := range fields {
		if bytes.EqualFold(f.name, []byte(name)) {
			out = append(out, f.value)
		}
	}
	return out
}

func firstValue(fields []field, name string) []byte {
	for _, f := range fields {
		if bytes.EqualFold(f.name, []byte(name)) {
			return f.value
		}
	}
	return nil
}
