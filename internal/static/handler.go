package static

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// immutableCacheControl is sent for fingerprinted files.
const immutableCacheControl = "public, max-age=31536000, immutable"

// compressedSuffixes names the precompressed siblings fasthttp.FS looks
// for (it wants all three encodings named; zstd is never chosen).
var compressedSuffixes = map[string]string{"br": ".br", "gzip": ".gz", "zstd": ".zst"}

// Handler serves the files of one directory. It is safe for concurrent
// use.
type Handler struct {
	root         *os.Root
	serve        fasthttp.RequestHandler
	prefix       string // StripPrefix without its trailing slash
	hasIndex     bool
	compress     bool
	immutable    bool
	cacheControl string // for files that are not fingerprinted
}

// pathKey is the RequestCtx user value that carries the path to serve
// into fasthttp.FS's PathRewrite.
type pathKey struct{}

// pathBox holds that path; pooled so serving does not allocate.
type pathBox struct{ p []byte }

var boxPool = sync.Pool{New: func() any { return new(pathBox) }}

// New opens cfg.Root (defaults are filled in on a copy) and returns its
// handler.
func New(cfg Config) (*Handler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	h := &Handler{
		root:      root,
		prefix:    strings.TrimSuffix(cfg.StripPrefix, "/"),
		hasIndex:  *cfg.Index != "",
		compress:  *cfg.Compress,
		immutable: *cfg.ImmutableFingerprints,
	}
	if age := *cfg.MaxAge; age > 0 {
		h.cacheControl = "public, max-age=" + strconv.FormatInt(int64(age/time.Second), 10)
	} else {
		h.cacheControl = "no-cache"
	}
	fs := &fasthttp.FS{
		// os.Root confines every open to the directory, symbolic links
		// included; as a plain fs.FS it also makes fasthttp compress in
		// memory instead of writing .fasthttp.gz files into the root.
		FS:                     root.FS(),
		PathRewrite:            func(ctx *fasthttp.RequestCtx) []byte { return ctx.UserValue(pathKey{}).(*pathBox).p },
		GenerateIndexPages:     false,
		AcceptByteRange:        true,
		GenerateETag:           true,
		Compress:               h.compress,
		CompressBrotli:         h.compress,
		CompressedFileSuffixes: compressedSuffixes,
	}
	if h.hasIndex {
		fs.IndexNames = []string{*cfg.Index}
	}
	h.serve = fs.NewRequestHandler()
	return h, nil
}

// Close releases the root directory. Call it once the handler no longer
// serves requests (an old config generation); the cached file handles
// of fasthttp.FS are released when the handler is collected.
func (h *Handler) Close() error { return h.root.Close() }

// Serve answers ctx with the file at path, the decoded request path (as
// RequestCtx.Path returns it, possibly rewritten by the route). Only GET
// and HEAD are served (405 otherwise). Paths that are not clean (see
// ErrBadPath) get 400; paths outside strip_prefix, hidden files, missing
// files and directories without an index file get 404. Ranges,
// If-None-Match/If-Modified-Since (304), precompressed variants and
// content types are fasthttp.FS's; Cache-Control is set on 200, 206 and
// 304 responses.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx, path []byte) {
	if !ctx.IsGet() && !ctx.IsHead() {
		errorResponse(ctx, fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		return
	}
	rel, ok := h.strip(path)
	if !ok {
		errorResponse(ctx, fasthttp.StatusNotFound)
		return
	}
	if len(rel) == 0 && h.prefix != "" {
		// The prefix itself: its directory form is the root.
		h.redirectToDir(ctx, path)
		return
	}
	if err := checkPath(rel); err != nil {
		if errors.Is(err, ErrHidden) {
			errorResponse(ctx, fasthttp.StatusNotFound)
		} else {
			errorResponse(ctx, fasthttp.StatusBadRequest)
		}
		return
	}
	isDir := rel[len(rel)-1] == '/'
	if isDir && !h.hasIndex {
		errorResponse(ctx, fasthttp.StatusNotFound)
		return
	}

	box := boxPool.Get().(*pathBox)
	box.p = rel
	ctx.SetUserValue(pathKey{}, box)
	h.serve(ctx)
	ctx.RemoveUserValue(pathKey{})
	box.p = nil
	boxPool.Put(box)

	switch status := ctx.Response.StatusCode(); status {
	case fasthttp.StatusOK, fasthttp.StatusPartialContent, fasthttp.StatusNotModified:
		hdr := &ctx.Response.Header
		if h.immutable && !isDir && fingerprinted(rel) {
			hdr.Set(fasthttp.HeaderCacheControl, immutableCacheControl)
		} else {
			hdr.Set(fasthttp.HeaderCacheControl, h.cacheControl)
		}
		if h.compress && len(hdr.Peek(fasthttp.HeaderVary)) == 0 {
			// The identity response varies too: a shared cache must not
			// hand it to a client that would get a compressed one.
			hdr.Set(fasthttp.HeaderVary, fasthttp.HeaderAcceptEncoding)
		}
	case fasthttp.StatusFound:
		// fasthttp.FS redirects a directory to its "/" form using the
		// rewritten path; point at the client's URL instead.
		if h.hasIndex {
			h.redirectToDir(ctx, path)
		} else {
			errorResponse(ctx, fasthttp.StatusNotFound)
		}
	case fasthttp.StatusForbidden:
		// A directory without its index file: no listings, so as if absent.
		errorResponse(ctx, fasthttp.StatusNotFound)
	case fasthttp.StatusNotFound, fasthttp.StatusBadRequest, fasthttp.StatusInternalServerError:
		errorResponse(ctx, status)
	}
}

// strip removes the prefix from path; ok is false when path is outside it.
func (h *Handler) strip(path []byte) (rel []byte, ok bool) {
	if h.prefix == "" {
		return path, true
	}
	if !bytes.HasPrefix(path, []byte(h.prefix)) {
		return nil, false
	}
	rel = path[len(h.prefix):]
	if len(rel) > 0 && rel[0] != '/' {
		return nil, false // "/assetsX" is not under "/assets"
	}
	return rel, true
}

// redirectToDir answers a directory path without its trailing slash with
// a relative redirect to the slash form ("dir" → "dir/"), which resolves
// against the client's own URL whatever the route rewrote.
func (h *Handler) redirectToDir(ctx *fasthttp.RequestCtx, path []byte) {
	if !h.hasIndex {
		errorResponse(ctx, fasthttp.StatusNotFound)
		return
	}
	last := path
	if i := bytes.LastIndexByte(path, '/'); i >= 0 {
		last = path[i+1:]
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
	loc := append(append(make([]byte, 0, len(last)+3), "./"...), last...)
	loc = append(loc, '/')
	ctx.Response.Header.SetBytesV(fasthttp.HeaderLocation, loc)
}

// errorResponse writes a short plain-text error, replacing whatever
// fasthttp.FS wrote (its messages name internals).
func errorResponse(ctx *fasthttp.RequestCtx, status int) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(fasthttp.StatusMessage(status) + "\n")
}
