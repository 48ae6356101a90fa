// Package static owns the edge's static-file action: it serves one
// directory per route, CDN style, on top of fasthttp.FS.
//
// The engine builds a Handler per route from its Config and calls Serve
// with the request path:
//
//	h, err := static.New(route.Static) // once per config generation
//	...
//	h.Serve(ctx, ctx.Path())          // in the request handler
//	...
//	h.Close()                         // when the generation is retired
//
// What it adds to fasthttp.FS:
//
//   - Path safety: only clean, decoded absolute paths are looked up (no
//     "..", ".", empty segments, backslashes, control bytes or escaped
//     dots, slashes and percents), dotfiles are never served, and every
//     open goes through os.Root, so symbolic links cannot leave the root.
//   - strip_prefix, so route /assets/ maps onto the directory root.
//   - Cache-Control: fingerprinted names (app.3f9a1c.js) are immutable for
//     a year, other files get max_age.
//   - Vary: Accept-Encoding on every response when compression is on, and
//     precompressed .br/.gz siblings chosen by Accept-Encoding.
//   - No directory listings; a directory needs its index file (404
//     otherwise), and "dir" redirects to "dir/" relative to the client's
//     URL.
//
// fasthttp.FS keeps up to 4096 small files in memory and open handles
// for 10s after their last use, so a changed file may be served in its
// old version for that long.
package static
