package progress

import (
	"bytes"
	"os"
	"testing"
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
	if got := buf.String(); !bytes.Contains([]byte(got), []byte("commit: 0 files, 1.0 MiB of 2.0 MiB (50%)")) {
		t.Fatalf("line %q", got)
	}
}
