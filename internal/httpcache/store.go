package httpcache

import (
	"bytes"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// reason says why a response was not stored ("" when it was).
type reason string

const (
	stored            reason = ""
	whyMethod         reason = "not a GET response"
	whyRequestNoStore reason = "request said no-store"
	whyAuthorization  reason = "request carried Authorization and the response is not public"
	whyPurged         reason = "purged while being fetched"
	whyStatus         reason = "status is not cacheable"
	whyNoStore        reason = "response said no-store"
	whyPrivate        reason = "response is private"
	whyVaryStar       reason = "Vary: *"
	whySetCookie      reason = "response sets a cookie"
	whyTooLarge       reason = "larger than max_object_size"
	whyIncomplete     reason = "body shorter than Content-Length"
	whyNoFreshness    reason = "no freshness lifetime and no validator"
	whyPartial        reason = "partial content"
)

// responseDriven reports whether the reason lies in the response (so the
// URL is likely uncacheable for everyone), not in this request.
func (w reason) responseDriven() bool {
	switch w {
	case stored, whyMethod, whyRequestNoStore, whyAuthorization, whyPurged, whyIncomplete, whyPartial:
		return false
	}
	return true
}

// cacheableStatus lists the statuses stored (RFC 9111 leaves the choice
// to the cache for explicit freshness; these are the common safe ones).
func cacheableStatus(code int) bool {
	switch code {
	case 200, 203, 204, 301, 404, 410:
		return true
	}
	return false
}

// head is what the cache takes from a response head besides the stored
// fields.
type head struct {
	fields        []field
	date          time.Time // Date, or zero
	ageValue      time.Duration
	setCookie     bool
	partial       bool
	surrogateKeys []string
}

func readHead(h *fasthttp.ResponseHeader) head {
	var hd head
	hd.fields = collectFields(h)
	if d := h.Peek(fasthttp.HeaderDate); len(d) > 0 {
		if t, err := fasthttp.ParseHTTPDate(d); err == nil {
			hd.date = t
		}
	}
	if a := parseDelta(h.Peek(fasthttp.HeaderAge)); a > 0 {
		hd.ageValue = seconds(a)
	}
	for range h.Cookies() {
		hd.setCookie = true
		break
	}
	hd.partial = len(h.Peek(fasthttp.HeaderContentRange)) > 0
	for _, line := range h.PeekAll("Surrogate-Key") {
		for k := range bytes.FieldsSeq(line) {
			hd.surrogateKeys = append(hd.surrogateKeys, string(k))
		}
	}
	return hd
}

// newEntry decides whether a response may be stored and computes its
// freshness (RFC 9111 3, 4.2). The body is attached later.
func (c *Cache) newEntry(r *Result, status int, hd head, responseTime time.Time) (*Entry, reason) {
	switch {
	case r.Status == Bypass || r.head:
		return nil, whyMethod
	case r.nostr:
		return nil, whyRequestNoStore
	case status == fasthttp.StatusPartialContent || hd.partial:
		return nil, whyPartial
	case !cacheableStatus(status):
		return nil, whyStatus
	}
	d := parseResponseDirectives(fieldValues(hd.fields, fasthttp.HeaderCacheControl))
	switch {
	case d.noStore:
		return nil, whyNoStore
	case d.private:
		return nil, whyPrivate
	case hd.setCookie:
		return nil, whySetCookie
	}
	varyNames, star := parseVary(fieldValues(hd.fields, fasthttp.HeaderVary))
	if star {
		return nil, whyVaryStar
	}
	authOK := d.public || d.sMaxAge != absent || d.mustRevalidate
	if r.auth && !authOK {
		return nil, whyAuthorization
	}

	// Age (4.2.3).
	apparent := time.Duration(0)
	if !hd.date.IsZero() {
		apparent = max(0, responseTime.Sub(hd.date))
	}
	corrected := hd.ageValue + max(0, responseTime.Sub(r.at))
	initialAge := max(apparent, corrected)

	// Freshness lifetime (4.2.1): s-maxage, max-age, Expires, default_ttl.
	var lifetime time.Duration
	switch {
	case d.sMaxAge != absent:
		lifetime = seconds(max(0, d.sMaxAge))
	case d.maxAge != absent:
		lifetime = seconds(max(0, d.maxAge))
	default:
		if exp := firstValue(hd.fields, fasthttp.HeaderExpires); exp != nil {
			if t, err := fasthttp.ParseHTTPDate(exp); err == nil {
				base := hd.date
				if base.IsZero() {
					base = responseTime
				}
				lifetime = max(0, t.Sub(base))
			} // an invalid Expires means already expired
		} else {
			lifetime = c.cfg.DefaultTTL
		}
	}

	// Stale windows: the response's directives win; the route's defaults
	// apply unless s-maxage (which implies proxy-revalidate) is present;
	// nothing stale is ever served against no-cache or *-revalidate.
	window := func(dir int64, def time.Duration) time.Duration {
		switch {
		case d.noCache || d.mustRevalidate || d.proxyRev:
			return 0
		case dir >= 0:
			return seconds(dir)
		case dir == absent && d.sMaxAge == absent:
			return def
		}
		return 0
	}
	e := &Entry{
		status:        status,
		fields:        hd.fields,
		etag:          firstValue(hd.fields, fasthttp.HeaderETag),
		surrogateKeys: hd.surrogateKeys,
		responseTime:  responseTime,
		initialAge:    initialAge,
		lifetime:      lifetime,
		swr:           window(d.swr, c.cfg.StaleWhileRevalidate),
		sie:           window(d.sie, c.cfg.StaleIfError),
		noCache:       d.noCache,
		authOK:        authOK,
		varyNames:     varyNames,
	}
	if lm := firstValue(hd.fields, fasthttp.HeaderLastModified); lm != nil {
		if t, err := fasthttp.ParseHTTPDate(lm); err == nil {
			e.lastModifiedRaw, e.lastModified = lm, t
		}
	}
	if !e.hasValidator() && (e.noCache || (lifetime <= initialAge && e.swr == 0 && e.sie == 0)) {
		return nil, whyNoFreshness
	}
	return e, stored
}

// selectVariant records the stored request's values of the Vary headers.
func selectVariant(e *Entry, req *fasthttp.RequestHeader) {
	if len(e.varyNames) == 0 {
		return
	}
	e.varyValues = make([]string, len(e.varyNames))
	var buf []byte
	for i, name := range e.varyNames {
		buf = appendVaryValue(buf[:0], req, name)
		e.varyValues[i] = string(buf)
	}
}

// weigh fills in e.size once the body is attached.
func weigh(e *Entry) {
	n := entryOverhead + len(e.body)
	for _, f := range e.fields {
		n += len(f.name) + len(f.value) + 48
	}
	for i := range e.varyNames {
		n += len(e.varyNames[i]) + len(e.varyValues[i]) + 32
	}
	for _, k := range e.surrogateKeys {
		n += len(k) + 16
	}
	e.size = n
}

// Storable reports whether a response with head h could be stored for r,
// judging by the head alone (a declared Content-Length over
// max_object_size fails here; an unknown length is checked as the body
// arrives). Use it to decide whether to buffer or Tee a streamed body.
func (c *Cache) Storable(r *Result, h *fasthttp.ResponseHeader) bool {
	if r.Status == Bypass || r.head || r.nostr {
		return false
	}
	if h.StatusCode() == fasthttp.StatusNotModified {
		return r.Entry != nil
	}
	if cl := h.ContentLength(); cl > int(c.cfg.MaxObjectSize) {
		return false
	}
	_, why := c.newEntry(r, h.StatusCode(), readHead(h), c.clock.Now())
	return why == stored
}

// Store offers the origin's response to a fetch made for r (a Miss,
// Revalidate or Stale refresh) and ends r's fetch, waking the requests
// waiting for it. req is the client's request (or a copy): its headers
// give the values Vary selects on. body is the complete response body
// (resp.Body() for a buffered response); Store copies it.
//
// A 304 refreshes r.Entry's headers and freshness (r.Status becomes
// Revalidated). A storable response replaces the stored variant. Store
// returns the entry to serve, also set as r.Entry, which the engine
// should Serve (that answers the client's own conditional and range
// headers, which PrepareUpstream removed from the upstream request); nil
// means nothing was stored and resp goes to the client as it is, except
// for a 304: nil then means it validated some other response, r.Status is
// Miss, and the engine must fetch once more (after PrepareUpstream, which
// now adds no validators).
func (c *Cache) Store(r *Result, req *fasthttp.Request, resp *fasthttp.Response, body []byte) *Entry {
	defer r.Release()
	if r.Status == Bypass || r.Status == Hit {
		return nil
	}
	now := c.clock.Now()
	status := resp.StatusCode()
	if status == fasthttp.StatusNotModified {
		return c.update(r, &resp.Header, now)
	}
	e, why := c.newEntry(r, status, readHead(&resp.Header), now)
	if why == stored && len(body) > int(c.cfg.MaxObjectSize) {
		why = whyTooLarge
	}
	if why != stored {
		c.notStored(r, why, status, now)
		return nil
	}
	if cl := resp.Header.ContentLength(); cl >= 0 && cl != len(body) && !resp.SkipBody {
		c.notStored(r, whyIncomplete, status, now)
		return nil
	}
	e.body = bytes.Clone(body)
	if e.body == nil {
		e.body = []byte{}
	}
	selectVariant(e, &req.Header)
	return c.commit(r, e, status, now)
}

// commit stores e for r unless a purge happened since r's lookup.
func (c *Cache) commit(r *Result, e *Entry, status int, now time.Time) *Entry {
	weigh(e)
	if c.epoch.Load() != r.epoch {
		c.notStored(r, whyPurged, status, now)
		return nil
	}
	c.put(r.key, e)
	if c.epoch.Load() != r.epoch {
		// A purge ran while we wrote: it may have missed our entry.
		c.drop(r.key, e)
		c.notStored(r, whyPurged, status, now)
		return nil
	}
	c.stats.stores.Add(1)
	r.Entry = e
	return e
}

// notStored records a response that was not stored. When the reason lies
// in the response, the URL skips coalescing for a while, and a stored
// variant it was meant to replace is dropped.
func (c *Cache) notStored(r *Result, why reason, status int, now time.Time) {
	c.stats.uncacheable.Add(1)
	if !why.responseDriven() || r.key == "" {
		return
	}
	if status >= 500 {
		// An origin error says nothing about cacheability; the stored
		// entry stays for stale-if-error.
		return
	}
	if r.Entry != nil {
		c.drop(r.key, r.Entry)
		r.Entry = nil
	}
	if r.flight != nil {
		c.markPass(r.key, now)
	}
}

// update applies a 304 to r.Entry (RFC 9111 4.3.4).
func (c *Cache) update(r *Result, h *fasthttp.ResponseHeader, now time.Time) *Entry {
	old := r.Entry
	if old == nil {
		return nil
	}
	if etag := h.Peek(fasthttp.HeaderETag); len(etag) > 0 && old.etag != nil && !weakMatch(etag, old.etag) {
		// The 304 validates some other response: the stored one is
		// outdated, and the request must be repeated without validators.
		c.drop(r.key, old)
		r.Entry = nil
		r.Status = Miss
		return nil
	}
	hd := readHead(h)
	hd.fields = mergeFields(old.fields, h)
	if hd.surrogateKeys == nil {
		hd.surrogateKeys = old.surrogateKeys
	}
	// A 304 to HEAD refreshes the GET entry as well (RFC 9111 4.3.5).
	probe := *r
	probe.head = false
	e, why := c.newEntry(&probe, old.status, hd, now)
	if why != stored {
		// The 304 still validates the stored body for this request, but
		// its new headers forbid keeping it: serve it once, unstored.
		once := *old
		once.fields = hd.fields
		c.notStored(r, why, old.status, now)
		r.Entry, r.Status = &once, Revalidated
		return &once
	}
	e.body = old.body
	// The 304 may not change what the stored request varied on.
	e.varyNames, e.varyValues = old.varyNames, old.varyValues
	if c.commit(r, e, old.status, now) == nil {
		// Purged meanwhile: still good for this request.
		r.Entry = e
	}
	r.Status = Revalidated
	c.stats.revalidated.Add(1)
	return e
}

// StaleIfError is for a fetch made for r that failed (a transport error or
// a 500, 502, 503 or 504): it reports whether r.Entry may be served
// instead, within its stale-if-error window (or because it is still
// fresh), and if so sets r.Status for Serve. It does not end r's fetch.
func (c *Cache) StaleIfError(r *Result) bool {
	e := r.Entry
	if e == nil || r.Status == Bypass {
		return false
	}
	age := e.Age(c.clock.Now())
	switch {
	case e.fresh(age):
		r.Status = Hit
		c.stats.hits.Add(1)
		return true
	case !e.noCache && age-e.lifetime < e.sie:
		r.Status = Stale
		c.stats.stale.Add(1)
		return true
	}
	return false
}

// PrepareUpstream edits the header of the request sent to the origin for
// r: the client's own validators (If-None-Match, If-Modified-Since) are
// removed so a full, storable response comes back (Serve answers them
// afterwards), and when r holds an entry to revalidate its validators are
// added instead.
func (r *Result) PrepareUpstream(h *fasthttp.RequestHeader) {
	if r.Status == Bypass {
		return
	}
	h.Del(fasthttp.HeaderIfNoneMatch)
	h.Del(fasthttp.HeaderIfModifiedSince)
	if e := r.Entry; e != nil && (r.Status == Revalidate || r.Status == Stale) {
		if e.etag != nil {
			h.SetBytesV(fasthttp.HeaderIfNoneMatch, e.etag)
		}
		if e.lastModifiedRaw != nil {
			h.SetBytesV(fasthttp.HeaderIfModifiedSince, e.lastModifiedRaw)
		}
	}
}

// Tee stores a streamed response body as it passes through: the returned
// reader yields body's bytes unchanged and keeps a copy (up to
// max_object_size); when body reaches EOF the copy is stored as Store
// would. Closing it closes body (when it is an io.Closer) and, if the body
// did not complete, ends r's fetch without storing. The fetch's lead moves
// to the reader: r.Release no longer ends it.
//
// Everything Tee needs from req and h is read before it returns, so the
// reader may outlive the request handler. If the head already shows the
// response cannot be stored, Tee ends the fetch and returns body (wrapped
// as an io.ReadCloser if needed).
func (c *Cache) Tee(r *Result, req *fasthttp.Request, h *fasthttp.ResponseHeader, body io.Reader) io.ReadCloser {
	passThrough := func() io.ReadCloser {
		r.Release()
		if rc, ok := body.(io.ReadCloser); ok {
			return rc
		}
		return io.NopCloser(body)
	}
	if r.Status == Bypass || r.Status == Hit {
		return passThrough()
	}
	now := c.clock.Now()
	status := h.StatusCode()
	if status == fasthttp.StatusNotModified {
		c.update(r, h, now)
		return passThrough()
	}
	var e *Entry
	why := whyTooLarge
	if cl := h.ContentLength(); cl <= int(c.cfg.MaxObjectSize) {
		e, why = c.newEntry(r, status, readHead(h), now)
	}
	if why != stored {
		c.notStored(r, why, status, now)
		return passThrough()
	}
	selectVariant(e, &req.Header)
	t := &teeBody{c: c, r: r.Detach(), e: e, src: body, want: h.ContentLength(), status: status}
	if t.want > 0 {
		t.buf = make([]byte, 0, t.want)
	}
	return t
}

// teeBody is the reader Tee returns.
var _ io.ReadCloser = (*teeBody)(nil)

type teeBody struct {
	c      *Cache
	r      Result
	e      *Entry
	src    io.Reader
	buf    []byte
	want   int // declared Content-Length, or negative
	status int
	over   bool
	done   bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	if n > 0 && !t.over {
		if len(t.buf)+n > int(t.c.cfg.MaxObjectSize) {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	if err == io.EOF && !t.done {
		t.done = true
		t.finish(true)
	}
	return n, err
}

func (t *teeBody) Close() error {
	var err error
	if rc, ok := t.src.(io.Closer); ok {
		err = rc.Close()
	}
	if !t.done {
		t.done = true
		t.finish(false)
	}
	return err
}

func (t *teeBody) finish(complete bool) {
	defer t.r.Release()
	now := t.c.clock.Now()
	switch {
	case t.over:
		t.c.notStored(&t.r, whyTooLarge, t.status, now)
	case !complete || (t.want >= 0 && len(t.buf) != t.want):
		t.c.notStored(&t.r, whyIncomplete, t.status, now)
	default:
		t.e.body = t.buf
		if t.e.body == nil {
			t.e.body = []byte{}
		}
		t.c.commit(&t.r, t.e, t.status, now)
	}
	t.buf = nil
}
