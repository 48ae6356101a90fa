package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress prints what the harness is doing. On a terminal the current
// step's line counts down in place; otherwise each step is one line.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
	scen  string

	mu     sync.Mutex
	line   string
	stopCh chan struct{}
	doneCh chan struct{}
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) scenario(name string) { p.scen = name }

// begin starts a step expected to take about d (0 = unknown).
func (p *progress) begin(d time.Duration, format string, args ...any) {
	p.finishTicker()
	p.mu.Lock()
	p.line = fmt.Sprintf("[%s] %s: %s", clock(time.Since(p.start)), p.scen, fmt.Sprintf(format, args...))
	p.mu.Unlock()
	if !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s", p.line)
	if d <= 0 {
		return
	}
	p.stopCh, p.doneCh = make(chan struct{}), make(chan struct{})
	stop, done, began := p.stopCh, p.doneCh, time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				left := max(d-time.Since(began), 0).Round(time.Second)
				p.mu.Lock()
				fmt.Fprintf(p.w, "\r\033[K%s … %s left", p.line, left)
				p.mu.Unlock()
			}
		}
	}()
}

// end completes the current step with its outcome.
func (p *progress) end(format string, args ...any) {
	p.finishTicker()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s → %s\n", p.line, fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(p.w, "%s → %s\n", p.line, fmt.Sprintf(format, args...))
}

// note prints a line of its own.
func (p *progress) note(format string, args ...any) {
	p.finishTicker()
	fmt.Fprintf(p.w, "[%s] %s: %s\n", clock(time.Since(p.start)), p.scen, fmt.Sprintf(format, args...))
}

func (p *progress) finishTicker() {
	if p.stopCh != nil {
		close(p.stopCh)
		<-p.doneCh
		p.stopCh, p.doneCh = nil, nil
	}
}

func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
