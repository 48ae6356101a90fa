package httpproxy

import (
	"encoding/json"
	"net/http"

	"github.com/tiergate/tiergate/internal/httpcache"
)

// PurgeHandler serves the admin API's cache purges:
//
//	POST /cache/purge?url=http://host/path   one URL (scheme optional)
//	POST /cache/purge?prefix=http://host/p   every URL starting with it
//	POST /cache/purge?key=product-42         every entry tagged Surrogate-Key
//	POST /cache/purge?all=1                  everything
//
// across every route cache; it answers with the number of entries removed.
func (e *Engine) PurgeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n := 0
		for _, c := range e.gen.Load().caches {
			if c == nil {
				continue
			}
			switch {
			case q.Get("url") != "":
				n += c.PurgeURL(q.Get("url"))
			case q.Get("prefix") != "":
				n += c.PurgePrefix(q.Get("prefix"))
			case q.Get("key") != "":
				n += c.PurgeSurrogateKey(q.Get("key"))
			case q.Get("all") != "":
				n += int(c.Stats().Entries)
				c.PurgeAll()
			default:
				http.Error(w, "want one of url=, prefix=, key=, all=1", http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"purged": n})
	})
}

// CacheStats returns each caching route's counters, by route name.
func (e *Engine) CacheStats() map[string]httpcache.Stats {
	g := e.gen.Load()
	out := map[string]httpcache.Stats{}
	for _, r := range g.routes.Routes() {
		if c := g.caches[r.Index]; c != nil {
			out[r.Name] = c.Stats()
		}
	}
	return out
}
