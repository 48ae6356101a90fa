package failover

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	coord := newFakeCoord()
	m, err := New(testConfig(), coord, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CheckWrite("app"); !errors.Is(err, ErrFenced) {
		t.Fatalf("err = %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "tiergate_failover_fenced_writes_total") {
		t.Fatalf("gathered %s", got)
	}
	if _, err := New(testConfig(), coord, Options{Registerer: reg}); err == nil {
		t.Fatal("registering twice did not fail")
	}
}

func TestCommandRewinder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	r := &CommandRewinder{Command: []string{"/bin/sh", "-c", `echo "$TIERGATE_SHARD $TIERGATE_NODE $TIERGATE_PRIMARY_ADDRESS $TIERGATE_PRIMARY_CONNINFO" > "$0"`, out}}
	req := RewindRequest{Shard: "app", Node: NodeConfig{Name: "n0", Address: "h0:5432"}, Primary: NodeConfig{Name: "n1", Address: "h1:5432"},
		PrimaryConninfo: "host=h1 port=5432 user=postgres application_name=n0"}
	if err := r.Rewind(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "app n0 h1:5432 host=h1 port=5432 user=postgres application_name=n0" {
		t.Fatalf("command saw %q", got)
	}
	fail := &CommandRewinder{Command: []string{"/bin/sh", "-c", "echo boom; exit 3"}}
	if err := fail.Rewind(context.Background(), req); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing command: %v", err)
	}
}

func TestConninfoQuoting(t *testing.T) {
	m, err := New(testConfig(), newFakeCoord(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.cfg.ReplicationPassword = `it's a \ secret`
	got := m.conninfo(NodeConfig{Name: "n1", Address: "10.0.0.1:5433"}, "n 2")
	want := `host=10.0.0.1 port=5433 user=postgres password='it\'s a \\ secret' application_name='n 2'`
	if got != want {
		t.Fatalf("conninfo = %s\nwant       %s", got, want)
	}
	if q := quoteLiteral(got); q[0] != '\'' || q[len(q)-1] != '\'' || strings.ReplaceAll(q[1:len(q)-1], "''", "'") != got {
		t.Fatalf("quoteLiteral = %s", q)
	}
}
