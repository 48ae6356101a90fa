package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// stopAll must end every child and its whole process group (the way
// nginx's workers hang off its master), including children that ignore
// SIGTERM.
func TestProcSetStopsProcessGroups(t *testing.T) {
	ps := newProcSet(t.TempDir())
	cases := []struct {
		name string
		argv []string
	}{
		{"plain", []string{"sleep", "60"}},
		{"with grandchild", []string{"sh", "-c", "sleep 60 & sleep 60; wait"}},
		{"ignores SIGTERM", []string{"sh", "-c", "trap '' TERM; sleep 60 & wait"}},
	}
	var pgids []int
	for _, tc := range cases {
		p, err := ps.start(tc.name, tc.argv, procOpts{})
		if err != nil {
			t.Fatal(err)
		}
		pgids = append(pgids, p.pid())
	}
	start := time.Now()
	ps.stopAll()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopAll took %v", d)
	}
	for i, pgid := range pgids {
		// Killed grandchildren may linger as zombies until init reaps them;
		// they hold nothing, so only live processes count.
		err := waitFor(context.Background(), nil, 5*time.Second, func() error {
			if m, err := groupMemory(pgid); err == nil {
				return fmt.Errorf("%d live processes", m.Procs)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: process group %d still alive: %v", cases[i].name, pgid, err)
		}
	}
}

func TestRunToolOutputAndFailure(t *testing.T) {
	ps := newProcSet(t.TempDir())
	out, err := ps.runTool(context.Background(), "echo", []string{"sh", "-c", "echo out; echo err >&2"}, nil)
	if err != nil || string(out) != "out\nerr\n" {
		t.Errorf("got %q, %v", out, err)
	}
	if _, err := ps.runTool(context.Background(), "false", []string{"false"}, nil); err == nil {
		t.Error("a failing tool must return an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ps.runTool(ctx, "sleep", []string{"sleep", "60"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	if len(ps.procs) != 0 {
		t.Errorf("%d children left", len(ps.procs))
	}
}

func TestWaitForReportsAnExitedChild(t *testing.T) {
	ps := newProcSet(t.TempDir())
	p, err := ps.start("dies", []string{"sh", "-c", "echo boom >&2; exit 3"}, procOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.stopAll()
	err = waitFor(context.Background(), p, 10*time.Second, func() error { return errors.New("never ready") })
	if !errors.Is(err, errExited) {
		t.Fatalf("got %v", err)
	}
}
