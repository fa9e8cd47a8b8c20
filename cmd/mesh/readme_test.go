package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository's root, found before any test runs: run
// with -C moves this process into folders that tests then remove.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// readmeBlocks returns the ```sh blocks of README.md's section title.
func readmeBlocks(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", title)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

// TestReadmeQuickStart runs the README's quick start word for word, in a
// scratch folder instead of /tmp (the only change), from the repository's
// root as a fresh clone would: it builds mesh and runs its main job, and
// each step's result is checked. The test command it gives is the one
// .ci/run runs.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	blocks := readmeBlocks(t, "Quick start (fresh machine, Go installed)")
	if len(blocks) < 2 {
		t.Fatalf("the quick start has %d sh blocks, want the main job and the tests", len(blocks))
	}
	run, tests := blocks[0], blocks[1]
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\n"+tests+"\n") {
		t.Errorf(".ci/run does not run the README's test command %q", tests)
	}
	if strings.Count(run, "/tmp/") < 3 {
		t.Fatalf("the quick start no longer works in /tmp: %s", run)
	}
	scratch := t.TempDir()
	cmdline := strings.ReplaceAll(run, "/tmp/", scratch+"/")
	cmd := exec.Command("bash", "-e", "-c", cmdline)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "MESH_AUTHOR=Readme <readme@example.org>")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's quick start failed: %v\n%s", err, out.String())
	}
	// What the walk-through shows: the change, two commits, the diff, and
	// the first version restored beside the folder.
	for _, want := range []string{"M json/encode.go", "second", "first snapshot", "+// changed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, out.String())
		}
	}
	now, err := os.ReadFile(filepath.Join(scratch, "mesh-demo", "json", "encode.go"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile(filepath.Join(scratch, "mesh-demo-v1", "json", "encode.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(now, []byte("// changed\n")) || !bytes.Equal(v1, bytes.TrimSuffix(now, []byte("// changed\n"))) {
		t.Errorf("restore --to did not bring back the first version (%d bytes now, %d restored)", len(now), len(v1))
	}
}
