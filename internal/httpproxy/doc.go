// Package httpproxy is the edge's engine: the fasthttp listeners, the
// upstream clients, retries, streaming and config reload. This file set
// currently holds the edge's config schema; the engine lands with the edge
// proxy issue.
package httpproxy
