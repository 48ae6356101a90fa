package daemon

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tiergate/tiergate/internal/logging"
)

type fakeConfig struct{ name string }

func spec(loadErr, serveErr error, served *bool) Spec[*fakeConfig] {
	return Spec[*fakeConfig]{
		Name:          "fake",
		DefaultConfig: "fake.yaml",
		Load: func(path string) (*fakeConfig, error) {
			if loadErr != nil {
				return nil, loadErr
			}
			return &fakeConfig{name: path}, nil
		},
		Summary: func(c *fakeConfig) string { return "summary of " + c.name },
		Log:     func(*fakeConfig) logging.Config { return logging.Config{Level: "error"} },
		Serve: func(_ context.Context, path string, c *fakeConfig, _ *zap.Logger) error {
			*served = path == c.name
			return serveErr
		},
	}
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		loadErr        error
		serveErr       error
		want           int
		stdout, stderr string
		served         bool
	}{
		{"serve", []string{"-config", "x.yaml"}, nil, nil, 0, "", "", true},
		{"default path", nil, nil, nil, 0, "", "", true},
		{"check", []string{"-config", "x.yaml", "-check"}, nil, nil, 0, "x.yaml: ok: summary of x.yaml", "", false},
		{"bad config", []string{"-check"}, errors.New("fake.yaml:3: listen: bad"), nil, 1, "", "fake: fake.yaml:3: listen: bad", false},
		{"bad flag", []string{"-nope"}, nil, nil, 2, "", "flag provided but not defined", false},
		{"serve fails", nil, nil, errors.New("boom"), 1, "", "", true},
		{"stopped by signal", nil, nil, context.Canceled, 0, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			served := false
			got := Run(spec(tc.loadErr, tc.serveErr, &served), tc.args, &stdout, &stderr)
			if got != tc.want || served != tc.served {
				t.Fatalf("exit %d served %v, want %d %v (stderr %q)", got, served, tc.want, tc.served, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}
