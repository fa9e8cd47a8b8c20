// Command mesh keeps a folder's full history in a content-addressed store
// and, in later releases, in sync across devices. This file holds the
// entry point, the global flags and the one place where errors become
// messages and exit codes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"github.com/mesh-sync/mesh/internal/gitio"
	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errUsage marks an error in how mesh was called.
var errUsage = errors.New("usage")

type usageError struct{ err error }

func (u usageError) Error() string   { return u.err.Error() }
func (u usageError) Unwrap() []error { return []error{u.err, errUsage} }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// state is what the commands share in one run.
type state struct {
	stdout, stderr io.Writer
	json           bool
	notFound       bool
	args           []string     // the raw command line
	cmd            *cli.Command // the command that runs, once known
	cmdPath        string       // its name, with its parents' ("remote add")
	chdir          string       // -C DIR, when given
}

func main() {
	// The collector runs rarely (most commands are short and allocate
	// little that lives), but a soft limit keeps large commits, which
	// stream through pooled buffers, well under 150 MiB.
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(96 << 20)
	// MESH_CPUPROFILE=FILE writes a CPU profile of the command (go tool
	// pprof FILE), for finding where time goes in a real deployment.
	if path := os.Getenv("MESH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			code := run(os.Args, os.Stdout, os.Stderr)
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	// MESH_MEMPROFILE=FILE writes what the command allocated (go tool
	// pprof -sample_index=alloc_space FILE).
	if path := os.Getenv("MESH_MEMPROFILE"); path != "" {
		code := run(os.Args, os.Stdout, os.Stderr)
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		os.Exit(code)
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st := &state{stdout: stdout, stderr: stderr, args: args}
	app := newApp(st)
	if len(args) < 2 {
		// mesh alone: what it can do, on stderr, as a usage error (git
		// does the same), so a script that forgot the command fails.
		app.Writer = st.stderr
		_ = app.RunContext(ctx, []string{"mesh", "--help"})
		return exitUsage
	}
	err := app.RunContext(ctx, interspersed(app, args))
	if st.notFound {
		return exitUsage
	}
	return report(st, err)
}

func newApp(st *state) *cli.App {
	app := &cli.App{
		Name:                 "mesh",
		Usage:                "versioned folder sync: every device keeps the full history",
		Writer:               st.stdout,
		ErrWriter:            st.stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "run as if mesh was started in `DIR`"},
			// urfave/cli adds --help only when there is no help
			// command; mesh has its own.
			cli.HelpFlag,
		},
		Before: func(c *cli.Context) error {
			if dir := c.String("C"); dir != "" {
				if err := os.Chdir(dir); err != nil {
					return usagef("-C %s: %v", dir, err)
				}
				st.chdir = dir
			}
			return nil
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error { return usageError{err} },
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(st.stderr, "mesh: unknown command %q; see mesh --help\n", name)
			st.notFound = true
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.Commands = append(app.Commands, repoCommands(st)...)
	app.Commands = append(app.Commands, historyCommands(st)...)
	app.Commands = append(app.Commands, uiCommands(st)...)
	app.Commands = append(app.Commands, restoreCommands(st)...)
	app.Commands = append(app.Commands, mergeCommands(st)...)
	app.Commands = append(app.Commands, remoteCommands(st)...)
	app.Commands = append(app.Commands, gitCommands(st)...)
	app.Commands = append(app.Commands, syncCommands(st)...)
	app.Commands = append(app.Commands, artifactCommands(st)...)
	app.Commands = append(app.Commands, maintCommands(st)...)
	app.Commands = append(app.Commands, docCommands(st, app)...)
	app.Commands = append(app.Commands, helpCommand(st, app))
	app.Version = version()
	for _, cmd := range app.Commands {
		prepare(st, cmd, cmd.Name)
	}
	return app
}

// prepare sets what every command shares: usage errors become exit 2 and
// name the command, whose usage report then prints; the number of
// arguments is checked against the command's ArgsUsage, so the help and
// the check cannot disagree; and no argument is ever taken as a request
// for help (urfave/cli gives each command a "help"/"h" subcommand, so
// "mesh restore h" printed help and restored nothing); mesh help CMD and
// --help remain.
func prepare(st *state, cmd *cli.Command, path string) {
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		st.cmd, st.cmdPath = cmd, path
		return usageError{err}
	}
	cmd.HideHelpCommand = true
	if act := cmd.Action; act != nil {
		lo, hi := argCount(cmd.ArgsUsage)
		cmd.Action = func(c *cli.Context) error {
			st.cmd, st.cmdPath = cmd, path
			switch n := c.NArg(); {
			case n < lo:
				return usagef("%s needs %s", path, cmd.ArgsUsage)
			case hi >= 0 && n > hi && hi == 0:
				return usagef("%s takes no arguments", path)
			case hi >= 0 && n > hi:
				return usagef("%s takes at most %d argument(s): %s", path, hi, cmd.ArgsUsage)
			}
			return act(c)
		}
	}
	for _, sub := range cmd.Subcommands {
		prepare(st, sub, path+" "+sub.Name)
	}
}

// argCount reads how many arguments an ArgsUsage allows: a word outside
// brackets is required, one inside optional, and "..." means any number
// more (hi -1). Words that are flags ("--repair", "--") are not arguments.
func argCount(usage string) (lo, hi int) {
	depth := 0
	for _, w := range strings.Fields(usage) {
		start := depth
		for _, r := range w {
			switch r {
			case '[':
				depth++
			case ']':
				depth--
			}
		}
		name := strings.Trim(w, "[]")
		if strings.HasPrefix(name, "-") {
			continue
		}
		if hi >= 0 {
			hi++
		}
		if start == 0 && !strings.HasPrefix(w, "[") {
			lo++
		}
		if strings.HasSuffix(name, "...") {
			hi = -1
		}
	}
	return lo, hi
}

// release is the version a release build stamps in (.ci/release: -ldflags
// "-X main.release=v1.2.3"); empty in any other build.
var release string

// version is the release or module version mesh was built as, and its VCS
// revision when the build recorded one (with "+dirty" for a tree that had
// uncommitted changes).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if release != "" {
		v = release
	} else if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	// A pseudo-version names the revision already.
	if rev != "" && !strings.Contains(v, rev) {
		v += " " + rev
		if dirty {
			v += "+dirty"
		}
	}
	return v + " " + bi.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// helpCommand is mesh help [CMD...]: the usage of mesh, or of a command.
func helpCommand(st *state, app *cli.App) *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the commands, or how to use one (mesh help remote add)",
		ArgsUsage: "[COMMAND...]",
		Action: action(st, func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			cmds := app.Commands
			for _, name := range c.Args().Slice() {
				var found *cli.Command
				for _, cmd := range cmds {
					if cmd.HasName(name) {
						found = cmd
					}
				}
				if found == nil {
					return usagef("no command %q; see mesh help", strings.Join(c.Args().Slice(), " "))
				}
				cmds = found.Subcommands
			}
			// The same text as mesh COMMAND --help, which is what it runs.
			return app.RunContext(c.Context, append(append([]string{"mesh"}, c.Args().Slice()...), "--help"))
		}),
	}
}

// report prints err as one line (or JSON) and picks the exit code: the
// one place where error kinds become exit codes.
func report(st *state, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitError
	hint := ""
	usage := ""
	switch {
	case errors.Is(err, errUsage):
		code = exitUsage
		hint = "see mesh --help"
		if st.cmd != nil {
			usage = "usage: mesh " + st.cmdPath + " [options]"
			if st.cmd.ArgsUsage != "" {
				usage += " " + st.cmd.ArgsUsage
			}
			hint = "see mesh help " + st.cmdPath
		}
	case errors.Is(err, context.Canceled):
		err = errors.New("interrupted; nothing was half-written, run the command again")
	case errors.Is(err, object.ErrCorrupt) && slices.Contains(st.args, "fsck"):
		// fsck said what it found and what to do.
	case errors.Is(err, object.ErrCorrupt):
		hint = "run mesh fsck --read-data to see what is damaged, and mesh fsck --repair to fetch it again from another device"
	case errors.Is(err, worktree.ErrUnsafePath):
		hint = "the tree holds a path that would escape the folder; it was not written"
	case errors.Is(err, remote.ErrUnauthorized):
		hint = "both devices must be of one mesh: join it with a token from mesh invite"
	case errors.Is(err, gitio.ErrNotGit):
		hint = "import-git reads a complete, undamaged git repository (check it with git fsck)"
	case errors.Is(err, remote.ErrProtocol):
		hint = "the peer broke the protocol and was cut off; nothing it sent was kept unverified"
	}
	// Every other kind (repo.ErrNotRepo, ErrUnknownRev, ErrUncommitted,
	// object.ErrLocked, ErrNotFound, ErrPathNotFound, ...) is an error whose
	// message already says what to do: exit 1.
	if st.json {
		out := map[string]any{"error": err.Error(), "exitCode": code}
		if hint != "" {
			out["hint"] = hint
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(st.stderr, string(b))
		return code
	}
	fmt.Fprintf(st.stderr, "mesh: %v\n", err)
	if usage != "" {
		fmt.Fprintln(st.stderr, usage)
	}
	if hint != "" && code == exitUsage {
		fmt.Fprintf(st.stderr, "(%s)\n", hint)
	} else if hint != "" {
		fmt.Fprintf(st.stderr, "hint: %s\n", hint)
	}
	return code
}

// jsonFlag is --json, offered by every command that reads.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}

// action wraps a command body: it records --json and opens nothing itself.
func action(st *state, f func(c *cli.Context) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		st.json = c.Bool("json")
		return f(c)
	}
}

// repoAction wraps a command that works on the repository around the
// current directory: check validates the arguments first (so a usage error
// wins over "not a repository"), then the repository is opened for f and
// closed after it.
func repoAction(st *state, check func(*cli.Context) error, f func(*cli.Context, *repo.Repo) error) cli.ActionFunc {
	return action(st, func(c *cli.Context) error {
		if check != nil {
			if err := check(c); err != nil {
				return err
			}
		}
		r, err := repo.Open(".")
		if err != nil {
			return err
		}
		defer r.Close()
		return f(c, r)
	})
}

// revArg returns the first argument, or HEAD.
func revArg(c *cli.Context) string {
	if rev := c.Args().First(); rev != "" {
		return rev
	}
	return "HEAD"
}

func (st *state) printJSON(v any) error {
	v = fillEmpty(v)
	enc := json.NewEncoder(st.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (st *state) printf(format string, args ...any) { fmt.Fprintf(st.stdout, format, args...) }

// interspersed lets every command take its flags after its arguments
// too (mesh log HEAD -n 2, mesh get SOURCE REV --to DIR): urfave/cli stops
// at the first argument, so the flags are moved in front of them. "--"
// ends the flags: everything after it stays an argument, as does a lone
// "-" (stdin).
func interspersed(app *cli.App, args []string) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if args[i] == "-C" {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	for i+1 < len(args) && len(cmd.Subcommands) > 0 {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		cmd, i = sub, i+1
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue["-"+n], takesValue["--"+n] = !isBool, !isBool
		}
	}
	var flags, rest []string
	j := i + 1
	for ; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && takesValue[a[:2]] && !strings.Contains(a, "=") {
			// -n5: a one-letter flag with its value joined, as git takes it.
			flags = append(flags, a[:2], a[2:])
			continue
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			// A flag, known or not (urfave/cli then names an unknown one
			// in a usage error); a path that starts with "-" goes after
			// "--", as in git.
			flags = append(flags, a)
			if name, _, hasValue := strings.Cut(a, "="); !hasValue && takesValue[name] && j+1 < len(args) {
				j++
				flags = append(flags, args[j])
			}
			continue
		}
		rest = append(rest, a)
	}
	out := append(append([]string(nil), args[:i+1]...), flags...)
	if j < len(args) || len(rest) > 0 {
		// "--" keeps urfave/cli from reading an argument as a flag.
		out = append(out, "--")
	}
	out = append(out, rest...)
	if j < len(args) {
		out = append(out, args[j+1:]...)
	}
	return out
}

// quote is how text output names a path (see repo.QuotePath).
func quote(p string) string { return repo.QuotePath(p) }

// meter starts the progress line of a long operation on stderr (silent
// when stderr is not a terminal, and with --json), and returns a context
// through which the code below reports to it: fetches (chunk bytes), and
// import and export (commits). Call Done on it before printing.
func (st *state) meter(ctx context.Context, label string) (context.Context, *progress.Meter) {
	if st.json {
		return ctx, nil
	}
	m := progress.Start(st.stderr, label)
	return remote.WithProgress(progress.With(ctx, m), m), m
}
