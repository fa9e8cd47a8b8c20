package progress

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestSilentWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	m := Start(&buf, "commit")
	m.SetTotal(2, 100)
	m.Add(1, 60)
	m.Add(1, 40)
	m.Done()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q to a non-terminal", buf.String())
	}
	if m.files.Load() != 2 || m.bytes.Load() != 100 {
		t.Fatalf("counted %d files, %d bytes", m.files.Load(), m.bytes.Load())
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	Start(f, "restore").Done() // a plain file is not a terminal either
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Fatal("wrote progress into a file")
	}
	var nilMeter *Meter
	nilMeter.Add(1, 1) // a nil meter is a valid silent one
	nilMeter.Done()
}

func TestDrawLine(t *testing.T) {
	var buf bytes.Buffer
	m := &Meter{label: "commit", w: &buf}
	m.SetTotal(1, 2<<20)
	m.Add(0, 1<<20)
	m.draw()
	if got := buf.String(); !bytes.Contains([]byte(got), []byte("commit: 0/1 files, 1.0 MiB of 2.0 MiB (50%)")) {
		t.Fatalf("line %q", got)
	}
}

func TestLine(t *testing.T) {
	m := &Meter{label: "restore"}
	m.SetTotal(4, 4<<30)
	m.Add(1, 1<<30)
	// 1 GiB in 10 s: 102.4 MiB/s, 3 GiB left: 30 s.
	if got, want := m.line(10*time.Second), "restore: 1/4 files, 1.00 GiB of 4.00 GiB (25%), 102.4 MiB/s, 30s left"; got != want {
		t.Errorf("line\n got  %q\n want %q", got, want)
	}
	f := &Meter{label: "fetch"}
	f.Add(0, 1500)
	if got, want := f.line(time.Second), "fetch: 1.5 KiB, 1.5 KiB/s"; got != want {
		t.Errorf("no total: got %q, want %q", got, want)
	}
	c := &Meter{label: "import-git"}
	c.SetUnit("commits")
	c.SetTotal(100, 0)
	c.Add(25, 0)
	if got, want := c.line(10*time.Second), "import-git: 25/100 commits, 30s left"; got != want {
		t.Errorf("commits: got %q, want %q", got, want)
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 185 * time.Second: "3m05s", 130 * time.Minute: "2h10m"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %s, want %s", d, got, want)
		}
	}
	for b, want := range map[int64]string{0: "0 B", 1023: "1023 B", 2148686357: "2.00 GiB", 5 << 20: "5.0 MiB"} {
		if got := Size(b); got != want {
			t.Errorf("Size(%d) = %s, want %s", b, got, want)
		}
	}
}
