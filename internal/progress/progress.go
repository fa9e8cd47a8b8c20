// Package progress reports how far long work has got. Library code counts
// through a *Meter (nil is a valid, silent meter); only a terminal gets a
// rendered line, on stderr, so pipes and CI logs stay quiet.
package progress

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Meter counts files and bytes done out of an optional total.
type Meter struct {
	files, bytes   atomic.Int64
	totalF, totalB atomic.Int64
	w              io.Writer
	stop           chan struct{}
	wg             sync.WaitGroup

	mu    sync.Mutex // guards what Phase and SetUnit change
	label string
	unit  string // what the count counts ("" = files)
	start time.Time
}

// Start returns a meter that redraws a line on w every interval while it
// runs, or a silent meter when w is not a terminal.
func Start(w io.Writer, label string) *Meter {
	m := &Meter{label: label, start: time.Now()}
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return m
	}
	m.w = w
	m.stop = make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.draw()
			}
		}
	}()
	return m
}

// Phase starts the next stage of one operation on the same line (join:
// the fetch, then writing the files): counts and totals start again.
func (m *Meter) Phase(label string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files.Store(0)
	m.bytes.Store(0)
	m.totalF.Store(0)
	m.totalB.Store(0)
	m.unit = ""
	m.label = label
	m.start = time.Now()
}

// SetUnit names what the meter counts instead of files ("commits").
func (m *Meter) SetUnit(unit string) {
	if m != nil {
		m.mu.Lock()
		m.unit = unit
		m.mu.Unlock()
	}
}

type meterKey struct{}

// With returns a context that carries m, for code that reports through
// whatever meter its caller started (From).
func With(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// From is the meter ctx carries, or nil (a silent meter).
func From(ctx context.Context) *Meter {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	return m
}

// SetTotal sets what 100% is, when it is known.
func (m *Meter) SetTotal(files, bytes int64) {
	if m == nil {
		return
	}
	m.totalF.Store(files)
	m.totalB.Store(bytes)
}

// Add counts work done.
func (m *Meter) Add(files, bytes int64) {
	if m == nil {
		return
	}
	m.files.Add(files)
	m.bytes.Add(bytes)
}

func (m *Meter) draw() {
	m.mu.Lock()
	el := time.Since(m.start)
	m.mu.Unlock()
	fmt.Fprintf(m.w, "\r\033[K%s", m.line(el))
}

// line is what the meter shows after el: files done (of the total, when
// known), bytes done of the total with the percentage, the rate, and
// the time left at that rate.
func (m *Meter) line(el time.Duration) string {
	m.mu.Lock()
	label, unit := m.label, m.unit
	m.mu.Unlock()
	b, f := m.bytes.Load(), m.files.Load()
	tb, tf := m.totalB.Load(), m.totalF.Load()
	line := label + ": "
	if unit == "" {
		unit = "files"
	}
	switch {
	case tf > 0:
		line += fmt.Sprintf("%d/%d %s", f, tf, unit)
	case f > 0:
		line += fmt.Sprintf("%d %s", f, unit)
	}
	if b == 0 && tb == 0 && (tf > 0 || f > 0) {
		// Counting things, not bytes (commits of an import).
		if el.Seconds() >= 0.5 && tf > f && f > 0 {
			line += ", " + Duration(time.Duration(float64(tf-f)/float64(f)*float64(el))) + " left"
		}
		return line
	}
	if tf > 0 || f > 0 {
		line += ", "
	}
	line += Size(b)
	if tb > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", Size(tb), min(b*100/tb, 100))
	}
	if sec := el.Seconds(); sec >= 0.5 && b > 0 {
		rate := float64(b) / sec
		line += fmt.Sprintf(", %s/s", Size(int64(rate)))
		if tb > b {
			line += ", " + Duration(time.Duration(float64(tb-b)/rate*float64(time.Second))) + " left"
		}
	}
	return line
}

// Duration shows a time left the way people read it: 45s, 3m05s, 2h10m.
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Done stops redrawing and clears the line.
func (m *Meter) Done() {
	if m == nil || m.stop == nil {
		return
	}
	close(m.stop)
	m.wg.Wait()
	m.stop = nil
	fmt.Fprint(m.w, "\r\033[K")
}

// Size shows a byte count in binary units (B, KiB, MiB, GiB), as every
// text output of mesh does.
func Size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
