package httpcache

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"
)

// notModifiedFields are the stored fields a 304 repeats (RFC 9110 15.4.5).
var notModifiedFields = []string{
	fasthttp.HeaderETag, fasthttp.HeaderCacheControl, fasthttp.HeaderExpires,
	fasthttp.HeaderVary, fasthttp.HeaderContentLocation,
}

// Serve writes r.Entry as the response to req into resp, which should be
// empty: status, stored header fields, Age, X-Cache (r.Label()) and the
// body, shared with the entry and not copied. It answers the client's
// conditional request from the entry (If-None-Match by weak comparison,
// else If-Modified-Since against Last-Modified) with 304, a single byte
// range with 206 (or 416), and HEAD without a body.
func (c *Cache) Serve(r *Result, req *fasthttp.Request, resp *fasthttp.Response) {
	e := r.Entry
	h := &resp.Header
	h.SetNoDefaultContentType(true)
	var num [20]byte
	age := strconv.AppendInt(num[:0], int64(e.Age(r.at).Seconds()), 10)
	label := r.Label()

	if (e.status == fasthttp.StatusOK || e.status == fasthttp.StatusNonAuthoritativeInfo) && notModified(e, &req.Header) {
		h.SetStatusCode(fasthttp.StatusNotModified)
		for _, f := range e.fields {
			if inList(f.name, notModifiedFields) {
				h.AddBytesKV(f.name, f.value)
			}
		}
		h.SetBytesV(fasthttp.HeaderAge, age)
		h.Set(HeaderXCache, label)
		resp.SkipBody = true
		return
	}

	h.SetStatusCode(e.status)
	for _, f := range e.fields {
		h.AddBytesKV(f.name, f.value)
	}
	h.SetBytesV(fasthttp.HeaderAge, age)
	h.Set(HeaderXCache, label)

	body := e.body
	if e.status == fasthttp.StatusOK {
		if rng := req.Header.Peek(fasthttp.HeaderRange); len(rng) > 0 && bytes.IndexByte(rng, ',') < 0 && ifRangeMatches(e, req.Header.Peek(fasthttp.HeaderIfRange)) {
			start, end, err := fasthttp.ParseByteRange(rng, len(body))
			if err != nil {
				h.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
				h.Set(fasthttp.HeaderContentRange, "bytes */"+strconv.Itoa(len(body)))
				body = nil
			} else {
				h.SetStatusCode(fasthttp.StatusPartialContent)
				h.SetContentRange(start, end, len(body))
				body = body[start : end+1]
			}
		}
	}
	if req.Header.IsHead() {
		resp.SkipBody = true
		h.SetContentLength(len(body))
		return
	}
	resp.SetBodyRaw(body)
}

// notModified evaluates the client's If-None-Match, or If-Modified-Since
// when there is none, against e (RFC 9110 13.2.2).
func notModified(e *Entry, h *fasthttp.RequestHeader) bool {
	if inm := h.PeekAll(fasthttp.HeaderIfNoneMatch); len(inm) > 0 {
		for _, line := range inm {
			if etagListMatches(line, e.etag) {
				return true
			}
		}
		return false
	}
	ims := h.Peek(fasthttp.HeaderIfModifiedSince)
	if len(ims) == 0 || e.lastModifiedRaw == nil {
		return false
	}
	t, err := fasthttp.ParseHTTPDate(ims)
	if err != nil {
		return false
	}
	return !e.lastModified.After(t)
}

// etagListMatches reports whether the If-None-Match list matches etag by
// weak comparison; "*" matches any stored response.
func etagListMatches(list, etag []byte) bool {
	s := list
	for {
		for len(s) > 0 && (s[0] == ',' || s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
		if len(s) == 0 {
			return false
		}
		if s[0] == '*' {
			return true
		}
		tag, rest, ok := cutETag(s)
		if !ok {
			return false
		}
		if etag != nil && weakMatch(tag, etag) {
			return true
		}
		s = rest
	}
}

// cutETag splits the entity-tag at the start of s (W/"…" or "…") from
// the rest.
func cutETag(s []byte) (tag, rest []byte, ok bool) {
	i := 0
	if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
		i = 2
	}
	if i >= len(s) || s[i] != '"' {
		return nil, nil, false
	}
	end := bytes.IndexByte(s[i+1:], '"')
	if end < 0 {
		return nil, nil, false
	}
	n := i + 1 + end + 1
	return s[:n], s[n:], true
}

// weakMatch compares two entity-tags ignoring weakness (RFC 9110 8.8.3.2).
func weakMatch(a, b []byte) bool {
	return bytes.Equal(bytes.TrimPrefix(a, []byte("W/")), bytes.TrimPrefix(b, []byte("W/")))
}

// ifRangeMatches evaluates If-Range (RFC 9110 13.1.5): an absent one
// matches; an entity-tag matches by strong comparison; a date matches the
// Last-Modified date exactly.
func ifRangeMatches(e *Entry, ifRange []byte) bool {
	if len(ifRange) == 0 {
		return true
	}
	if ifRange[0] == '"' || bytes.HasPrefix(ifRange, []byte("W/")) {
		return e.etag != nil && ifRange[0] == '"' && !bytes.HasPrefix(e.etag, []byte("W/")) && bytes.Equal(ifRange, e.etag)
	}
	if e.lastModifiedRaw == nil {
		return false
	}
	t, err := fasthttp.ParseHTTPDate(ifRange)
	return err == nil && t.Equal(e.lastModified)
}
