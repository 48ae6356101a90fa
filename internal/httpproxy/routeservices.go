package httpproxy

import (
	"fmt"
	"reflect"
	"time"

	"github.com/tiergate/tiergate/internal/httpcache"
	"github.com/tiergate/tiergate/internal/static"
)

// cacheEntry and staticEntry keep a route's cache and file handler across
// reloads while the route's name and settings stay the same, so a reload
// does not empty the cache.
type cacheEntry struct {
	cfg   httpcache.Config
	cache *httpcache.Cache
}

type staticEntry struct {
	cfg static.Config
	h   *static.Handler
}

// retireDelay is how long a replaced cache or file handler stays open for
// requests still running on the previous generation.
const retireDelay = 30 * time.Second

// buildRouteServices attaches caches and static handlers to g's routes.
// Called with e.mu held.
func (e *Engine) buildRouteServices(g *generation) error {
	routes := g.routes.Routes()
	g.caches = make([]*httpcache.Cache, len(routes))
	g.statics = make([]*static.Handler, len(routes))
	liveCaches, liveStatics := map[string]bool{}, map[string]bool{}
	for _, r := range routes {
		if cc := r.Action.Cache; cc != nil {
			ent := e.caches[r.Name]
			if ent == nil || !reflect.DeepEqual(ent.cfg, *cc) {
				c, err := httpcache.New(*cc, httpcache.Options{})
				if err != nil {
					return fmt.Errorf("route %s: cache: %w", r.Name, err)
				}
				if ent != nil {
					old := ent.cache
					time.AfterFunc(retireDelay, old.Close)
				}
				ent = &cacheEntry{cfg: *cc, cache: c}
				e.caches[r.Name] = ent
			}
			g.caches[r.Index] = ent.cache
			liveCaches[r.Name] = true
		}
		if sc := r.Action.Static; sc != nil {
			ent := e.statics[r.Name]
			if ent == nil || !reflect.DeepEqual(ent.cfg, *sc) {
				h, err := static.New(*sc)
				if err != nil {
					return fmt.Errorf("route %s: static: %w", r.Name, err)
				}
				if ent != nil {
					old := ent.h
					time.AfterFunc(retireDelay, func() { _ = old.Close() })
				}
				ent = &staticEntry{cfg: *sc, h: h}
				e.statics[r.Name] = ent
			}
			g.statics[r.Index] = ent.h
			liveStatics[r.Name] = true
		}
	}
	for name, ent := range e.caches {
		if !liveCaches[name] {
			time.AfterFunc(retireDelay, ent.cache.Close)
			delete(e.caches, name)
		}
	}
	for name, ent := range e.statics {
		if !liveStatics[name] {
			h := ent.h
			time.AfterFunc(retireDelay, func() { _ = h.Close() })
			delete(e.statics, name)
		}
	}
	return nil
}
