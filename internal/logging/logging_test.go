package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestNew(t *testing.T) {
	tests := []struct {
		cfg     Config
		logDbg  bool
		isJSON  bool
		wantErr bool
	}{
		{Config{}, false, true, false},
		{Config{Level: "debug", Format: "console"}, true, false, false},
		{Config{Level: "loud"}, false, false, true},
		{Config{Format: "xml"}, false, false, true},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		log, _, err := NewTo(tc.cfg, &buf)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%+v: want error", tc.cfg)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("dbg")
		log.Info("hello", zap.String("k", "v"))
		out := buf.String()
		if strings.Contains(out, "dbg") != tc.logDbg {
			t.Errorf("%+v: debug logged=%v: %s", tc.cfg, !tc.logDbg, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var m map[string]any
		if isJSON := json.Unmarshal([]byte(lines[len(lines)-1]), &m) == nil; isJSON != tc.isJSON {
			t.Errorf("%+v: json=%v: %s", tc.cfg, isJSON, out)
		}
	}
}

func TestValidate(t *testing.T) {
	c := Config{Level: "verbose", Format: "yaml"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "level:") || !strings.Contains(err.Error(), "format:") {
		t.Fatalf("got %v", err)
	}
	c = Config{}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLevelChangesAtRuntime(t *testing.T) {
	var buf bytes.Buffer
	log, lvl, err := NewTo(Config{Level: "warn"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	lvl.SetLevel(zap.InfoLevel)
	log.Info("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Fatal(buf.String())
	}
}
