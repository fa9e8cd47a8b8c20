package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/urfave/cli/v2"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mesh": func() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script: every
// command, its output, its errors.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("MESH_AUTHOR", "Tess <tess@example.org>")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// corrupt GLOB: flip one byte in the middle of the first
			// file matching GLOB (a pack, an index).
			"corrupt": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: corrupt GLOB")
				}
				m, _ := filepath.Glob(ts.MkAbs(args[0]))
				if len(m) == 0 {
					ts.Fatalf("no file matches %s", args[0])
				}
				b, err := os.ReadFile(m[0])
				ts.Check(err)
				b[len(b)/2] ^= 0xff
				os.Chmod(m[0], 0o644)
				ts.Check(os.WriteFile(m[0], b, 0o644))
			},
			// hexflip FILE LINE COL: change the hex digit at column COL
			// (from 1) of line LINE (from 1) of FILE to another hex digit.
			"hexflip": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: hexflip FILE LINE COL")
				}
				line, _ := strconv.Atoi(args[1])
				col, _ := strconv.Atoi(args[2])
				b, err := os.ReadFile(ts.MkAbs(args[0]))
				ts.Check(err)
				lines := strings.Split(string(b), "\n")
				if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1]) {
					ts.Fatalf("%s has no line %d column %d", args[0], line, col)
				}
				l := []byte(lines[line-1])
				if l[col-1] == '0' {
					l[col-1] = '1'
				} else {
					l[col-1] = '0'
				}
				lines[line-1] = string(l)
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(lines, "\n")), 0o644))
			},
			// waitfile FILE: wait (up to a minute) until FILE exists, as
			// mesh serve's address file does once it listens.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("%s did not appear within a minute", args[0])
					}
				}
			},
			// envfile NAME FILE: set NAME to FILE's content, trimmed.
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: envfile NAME FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
			// qfile GOQUOTED CONTENT: write CONTENT to the file whose name
			// is the Go string literal GOQUOTED ("two\nlines", "a\xffb").
			"qfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: qfile GOQUOTED CONTENT")
				}
				name, err := strconv.Unquote(args[0])
				ts.Check(err)
				ts.Check(os.WriteFile(ts.MkAbs(name), []byte(args[1]), 0o644))
			},
			// mode PERM FILE: FILE has permission bits PERM (octal).
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: mode PERM FILE")
				}
				fi, err := os.Lstat(ts.MkAbs(args[1]))
				ts.Check(err)
				want, _ := strconv.ParseUint(args[0], 8, 32)
				if got := uint64(fi.Mode().Perm()); (got == want) == neg {
					ts.Fatalf("mode of %s is %o", args[1], got)
				}
			},
		},
	})
}

// TestExitCodes checks the one mapping from errors to exit codes.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-C", dir, "init"}, exitOK, ""},
		{[]string{"-C", dir, "init"}, exitError, "already a mesh repository"},
		{[]string{"-C", dir, "log"}, exitError, "no commits yet"},
		{[]string{"-C", dir, "commit"}, exitUsage, "message"},
		{[]string{"-C", dir, "commit", "-m", "x", "extra"}, exitUsage, "no arguments"},
		{[]string{"-C", dir, "bogus"}, exitUsage, "unknown command"},
		{[]string{"-C", dir, "log", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"-C", dir, "log", "-n", "x"}, exitUsage, ""},
		{[]string{"-C", dir, "cat", "nocolon"}, exitUsage, "REV:PATH"},
		{[]string{"-C", dir, "checkout"}, exitUsage, "checkout needs REV"},
		{[]string{"-C", dir, "rev-parse", "nope"}, exitError, "unknown revision"},
		{[]string{"-C", t.TempDir(), "status"}, exitError, "not a mesh repository"},
		{[]string{"-C", filepath.Join(dir, "missing"), "status"}, exitUsage, "missing"},
		{[]string{"-C", t.TempDir(), "status", "--json"}, exitError, `"exitCode":1`},
		{[]string{"-C", dir, "fsck", "extra"}, exitUsage, "usage: mesh fsck [options] [--repair [REMOTE]]"},
		{[]string{"-C", dir, "gc", "extra"}, exitUsage, "gc takes no arguments\nusage: mesh gc [options]\n"},
		{[]string{"-C", dir, "remote", "list", "--bogus"}, exitUsage, "usage: mesh remote list"},
		{[]string{"-C", dir, "remote", "add", "x"}, exitUsage, "remote add needs NAME URL"},
		{[]string{"get", "SRC"}, exitUsage, "get needs SOURCE REV[:PATH]"},
		{[]string{"get", "SRC", "REV"}, exitUsage, "--to DIR"},
		{[]string{"merge"}, exitUsage, "see mesh help merge"},
		{[]string{}, exitUsage, "USAGE:"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"mesh"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.err) {
			t.Errorf("mesh %s: exit %d, stderr %q; want exit %d with %q", strings.Join(c.args, " "), code, errb.String(), c.code, c.err)
		}
		if code != exitOK && len(c.args) > 0 && strings.Count(strings.TrimSpace(errb.String()), "\n") > 2 {
			t.Errorf("mesh %s: error is more than three lines: %q", strings.Join(c.args, " "), errb.String())
		}
		if code != exitOK && out.Len() > 0 {
			t.Errorf("mesh %s: failed with output on stdout: %q", strings.Join(c.args, " "), out.String())
		}
	}
}

// TestHelpEveryCommand runs mesh help and --help for every command and
// subcommand: each names the command, its arguments and every flag, and
// both ways of asking print the same.
func TestHelpEveryCommand(t *testing.T) {
	var walk func(prefix []string, cmds []*cli.Command)
	n := 0
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.Name == "help" && prefix == nil {
				continue // mesh help help is mesh's overview, as urfave/cli prints it
			}
			path := append(append([]string(nil), prefix...), cmd.Name)
			n++
			var out, errb bytes.Buffer
			if code := run(append([]string{"mesh", "help"}, path...), &out, &errb); code != exitOK {
				t.Errorf("mesh help %s: exit %d: %s", strings.Join(path, " "), code, errb.String())
				continue
			}
			help := out.String()
			if !strings.Contains(help, "mesh "+strings.Join(path, " ")) || !strings.Contains(help, cmd.Usage) {
				t.Errorf("mesh help %s does not name the command and say what it does:\n%s", strings.Join(path, " "), help)
			}
			if cmd.ArgsUsage != "" && !strings.Contains(help, cmd.ArgsUsage) {
				t.Errorf("mesh help %s does not show its arguments %q:\n%s", strings.Join(path, " "), cmd.ArgsUsage, help)
			}
			for _, f := range cmd.Flags {
				if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
					continue
				}
				name := "--" + f.Names()[0]
				if len(name) == 3 {
					name = name[1:]
				}
				if !strings.Contains(help, name+" ") && !strings.Contains(help, name+",") {
					t.Errorf("mesh help %s does not show %s:\n%s", strings.Join(path, " "), name, help)
				}
			}
			var out2 bytes.Buffer
			if code := run(append(append([]string{"mesh"}, path...), "--help"), &out2, &errb); code != exitOK || out2.String() != help {
				t.Errorf("mesh %s --help: exit %d, and it differs from mesh help %s:\n%s", strings.Join(path, " "), code, strings.Join(path, " "), out2.String())
			}
			walk(path, cmd.Subcommands)
		}
	}
	walk(nil, newApp(&state{stdout: io.Discard, stderr: io.Discard}).Commands)
	if n < 30 {
		t.Errorf("walked only %d commands", n)
	}
}

// TestRawNames: a name that is not UTF-8 comes out of --json with its
// exact bytes (pathBytes), and cat and restore take those bytes back.
func TestRawNames(t *testing.T) {
	dir := t.TempDir()
	name := "bad\xffbyte.txt"
	mesh := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := run(append([]string{"mesh", "-C", dir}, args...), &out, &errb); code != exitOK {
			t.Fatalf("mesh %q: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	mesh("init")
	if err := os.WriteFile(filepath.Join(dir, name), []byte("exact\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Changes []struct {
			Path      string
			PathBytes []byte
		}
	}
	if err := json.Unmarshal([]byte(mesh("status", "--json")), &st); err != nil || len(st.Changes) != 1 {
		t.Fatalf("status --json: %v %+v", err, st)
	}
	if got := string(st.Changes[0].PathBytes); got != name {
		t.Fatalf("pathBytes %q, want %q", got, name)
	}
	mesh("commit", "-m", "raw")
	var ls []struct{ PathBytes []byte }
	if err := json.Unmarshal([]byte(mesh("ls", "--json")), &ls); err != nil || len(ls) != 1 || string(ls[0].PathBytes) != name {
		t.Fatalf("ls --json: %v %+v", err, ls)
	}
	back := string(ls[0].PathBytes)
	if got := mesh("cat", "HEAD:"+back); got != "exact\n" {
		t.Fatalf("cat by the bytes from JSON: %q", got)
	}
	os.Remove(filepath.Join(dir, name))
	mesh("restore", back)
	if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != "exact\n" {
		t.Fatalf("restore by the bytes from JSON: %q %v", b, err)
	}
	if out := mesh("ls"); !strings.Contains(out, `"bad\377byte.txt"`) {
		t.Fatalf("ls does not quote the name: %q", out)
	}
}

// TestCompletionAndMan: the bash script parses and completes commands,
// subcommands and flags; fish's names every command; the manual page
// names every command. All come from the command definitions.
func TestCompletionAndMan(t *testing.T) {
	out := func(args ...string) string {
		var o, e bytes.Buffer
		if code := run(append([]string{"mesh"}, args...), &o, &e); code != exitOK {
			t.Fatalf("mesh %v: exit %d: %s", args, code, e.String())
		}
		return o.String()
	}
	script := filepath.Join(t.TempDir(), "mesh.bash")
	if err := os.WriteFile(script, []byte(out("completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) string {
		cmd := exec.Command("bash", append([]string{"-c", `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _mesh; echo "${COMPREPLY[*]}"`, script}, words...)...)
		cmd.Dir = t.TempDir() // other tests' -C moved this process into folders since removed
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash completion of %v: %v: %s", words, err, stderr.String())
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"mesh", "resto"}, "restore"},
		{[]string{"mesh", "remote", "a"}, "add"},
		{[]string{"mesh", "log", "--onel"}, "--oneline"},
		{[]string{"mesh", "-C", "/tmp", "conf"}, "config conflicts"},
		{[]string{"mesh", "restore", "--sou"}, "--source"},
	} {
		if got := complete(c.words...); got != c.want {
			t.Errorf("completing %q: %q, want %q", c.words, got, c.want)
		}
	}
	fish := out("completion", "fish")
	zsh := out("completion", "zsh")
	man := out("man")
	if !strings.HasPrefix(zsh, "#compdef mesh") || !strings.HasPrefix(man, ".TH MESH 1 ") || !strings.Contains(man, `.SS "mesh remote add"`) {
		t.Errorf("zsh or man header wrong:\n%.80s\n%.80s", zsh, man)
	}
	for _, cmd := range newApp(&state{stdout: io.Discard, stderr: io.Discard}).Commands {
		if !strings.Contains(fish, "-a "+cmd.Name+" ") || !strings.Contains(man, `.SS "mesh `+roff(cmd.Name)+`"`) {
			t.Errorf("fish completion or man page lacks %s", cmd.Name)
		}
	}
	var e bytes.Buffer
	if code := run([]string{"mesh", "completion", "tcsh"}, io.Discard, &e); code != exitUsage {
		t.Errorf("completion tcsh: exit %d", code)
	}
}
