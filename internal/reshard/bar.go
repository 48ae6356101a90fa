package reshard

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar renders Progress reports on a terminal: one line redrawn in place
// with \r, or, when the output is not a terminal, one plain line per
// report at most every LineEvery of job time (and at each phase change).
// Update is safe for concurrent use; pass it as Options.Progress.
type Bar struct {
	w   io.Writer
	tty bool
	// Width is the bar's width in characters. Default 24.
	Width int
	// LineEvery spaces the lines written when not on a terminal. Default
	// 10s.
	LineEvery time.Duration

	mu       sync.Mutex
	phase    Phase
	lastLine time.Duration
	drawn    bool
}

// NewBar returns a Bar writing to w; tty selects in-place redrawing (see
// IsTerminal).
func NewBar(w io.Writer, tty bool) *Bar {
	return &Bar{w: w, tty: tty, Width: 24, LineEvery: 10 * time.Second}
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update draws p.
func (b *Bar) Update(p Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := b.Line(p)
	newPhase := p.Phase != b.phase
	if b.tty {
		if newPhase && b.drawn {
			fmt.Fprint(b.w, "\n")
		}
		fmt.Fprintf(b.w, "\r%s\x1b[K", line)
		b.drawn = true
	} else if newPhase || p.Elapsed-b.lastLine >= b.LineEvery || p.Elapsed < b.lastLine {
		fmt.Fprintln(b.w, line)
		b.lastLine = p.Elapsed
	}
	b.phase = p.Phase
}

// Done ends the in-place line (terminal only).
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty && b.drawn {
		fmt.Fprint(b.w, "\n")
		b.drawn = false
	}
}

// Line formats p as one line, e.g.
//
//	copy    [##########..............]  42.0%  42,000/100,000 rows  14,000 moved  1.6 MiB  21,000 rows/s  ETA 3s
func (b *Bar) Line(p Progress) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%-8s", p.Phase)
	switch p.Phase {
	case PhaseCatchup, PhaseCutover:
		fmt.Fprintf(&s, "%s changes applied, %s waiting", count(p.Replayed), count(p.Backlog))
		return s.String()
	case PhaseDone:
		fmt.Fprintf(&s, "%s rows moved", count(p.Moved))
		return s.String()
	}
	width := b.Width
	if width <= 0 {
		width = 24
	}
	filled := int(p.Percent() / 100 * float64(width))
	s.WriteByte('[')
	s.WriteString(strings.Repeat("#", filled))
	s.WriteString(strings.Repeat(".", width-filled))
	s.WriteByte(']')
	fmt.Fprintf(&s, " %5.1f%%  %s/%s rows  %s %s", p.Percent(), count(p.Rows), count(p.Total), count(p.Moved), movedWord(p.Phase))
	if p.Phase == PhaseCopy {
		fmt.Fprintf(&s, "  %s", size(p.Bytes))
	}
	fmt.Fprintf(&s, "  %s rows/s", count(int64(p.Rate)))
	if p.ETA >= 0 {
		fmt.Fprintf(&s, "  ETA %v", p.ETA)
	}
	return s.String()
}

func movedWord(p Phase) string {
	if p == PhaseDelete {
		return "deleted"
	}
	return "moved"
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// size formats bytes with a binary unit.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
