//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnreadableFile: a file mesh cannot read is named in a one-line
// error, the exit code is 1, and nothing is committed. As root every file
// is readable, so the command runs as nobody there.
func TestUnreadableFile(t *testing.T) {
	bin := meshBin(t)
	dir := openDir(t)
	mustMesh(t, bin, dir, "init")
	os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("fine"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret"), 0o000)
	cmd := meshCmd(bin, dir, "commit", "-m", "x")
	if os.Geteuid() == 0 {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && p != filepath.Join(dir, "secret.txt") {
				os.Chmod(p, fi.Mode().Perm()|0o777)
			}
			return nil
		})
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	r := runMesh(t, cmd)
	if r.code != 1 || !strings.Contains(r.stderr, "secret.txt") || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runMesh(t, meshCmd(bin, dir, "log")); r.code != 1 || !strings.Contains(r.stderr, "no commits yet") {
		t.Fatalf("a commit was made: %+v", r)
	}
}
