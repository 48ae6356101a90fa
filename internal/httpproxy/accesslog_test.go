package httpproxy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiergate/tiergate/router/httproute"
)

func TestAccessLogLines(t *testing.T) {
	b := startBackend(t, "a")
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := baseConfig(b)
	cfg.AccessLog = AccessLogConfig{Enabled: true, Output: path}
	cfg.Routes = []httproute.RouteConfig{{Name: "all", Upstream: "web"}}
	te := startEdge(t, cfg)
	c := newHTTPClient()
	get(t, c, te.url+`/p?q="quoted"\back`, "Host", "example.com")
	get(t, c, te.url+"/x")
	te.stop() // flushes the buffer
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	first := lines[0]
	if first["host"] != "example.com" || first["method"] != "GET" || first["status"].(float64) != 200 ||
		first["route"] != "all" || first["upstream"] != "web" || first["backend"] != b.addr ||
		!strings.Contains(first["uri"].(string), `"quoted"`) || first["ts"] == "" || first["client"] == "" {
		t.Fatalf("line: %v", first)
	}
}

func TestAppendJSONEscaped(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "ctl\x01\n", "ünïcode"} {
		out := appendJSONEscaped(nil, s)
		var back string
		if err := json.Unmarshal(append(append([]byte{'"'}, out...), '"'), &back); err != nil || back != s {
			t.Errorf("%q → %q → %q, %v", s, out, back, err)
		}
	}
}
