// Package dashboard serves the live status pages of the admin listeners:
// one self-contained HTML page per binary (no external assets, no
// JavaScript framework) that polls the binary's JSON status endpoint and
// redraws.
package dashboard

import (
	"bytes"
	_ "embed"
	"net/http"
)

//go:embed edge.html
var edgePage []byte

//go:embed dbproxy.html
var dbproxyPage []byte

//go:embed poll.js
var pollScript []byte

// pollMarker is where a page's script gets poll.js.
var pollMarker = []byte("/*tiergate:poll.js*/")

// Edge returns the handler for the edge's dashboard; it reads /status.
func Edge() http.Handler { return page(edgePage) }

// DBProxy returns the handler for dbproxy's dashboard; it reads /status.
func DBProxy() http.Handler { return page(dbproxyPage) }

func page(html []byte) http.Handler {
	body := bytes.Replace(html, pollMarker, pollScript, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(body)
	})
}
