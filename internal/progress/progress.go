// Package progress reports how far long work has got. Library code counts
// through a *Meter (nil is a valid, silent meter); only a terminal gets a
// rendered line, on stderr, so pipes and CI logs stay quiet.
package progress

import (
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
	label          string
	w              io.Writer
	stop           chan struct{}
	wg             sync.WaitGroup
	start          time.Time
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
	el := time.Since(m.start).Seconds()
	b := m.bytes.Load()
	line := fmt.Sprintf("%s: %d files, %s", m.label, m.files.Load(), size(b))
	if tb := m.totalB.Load(); tb > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", size(tb), b*100/tb)
	}
	if el > 0 {
		line += fmt.Sprintf(", %s/s", size(int64(float64(b)/el)))
	}
	fmt.Fprintf(m.w, "\r\033[K%s", line)
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

func size(b int64) string {
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
