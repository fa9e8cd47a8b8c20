package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

func historyCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "log",
			Usage:     "show commits reachable from REV (default HEAD), newest first; with paths, the commits that changed them",
			ArgsUsage: "[REV] [--] [PATH...]",
			Description: "With paths, a commit is shown when what is at those paths differs from its\n" +
				"parents', as git log -- PATH simplifies history: a commit with a parent that has\n" +
				"the same there is left out and only that parent followed. --follow, with one\n" +
				"file, goes on under the name it had before a rename.",
			Flags: []cli.Flag{jsonFlag, &cli.IntFlag{Name: "n", Aliases: []string{"max-count"}, Usage: "show at most `N` commits"},
				&cli.BoolFlag{Name: "oneline", Usage: "one line per commit"},
				&cli.BoolFlag{Name: "follow", Usage: "follow one file's renames"},
				&cli.BoolFlag{Name: "stat", Usage: "with each commit, the lines each file gained and lost against the first parent"},
				&cli.BoolFlag{Name: "name-status", Usage: "with each commit, the paths it changed and how"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if c.Int("n") < 0 {
					return usagef("-n must not be negative")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				rev, paths, err := logArgs(st, c, r)
				if err != nil {
					return err
				}
				if c.Bool("follow") && len(paths) != 1 {
					return usagef("--follow takes exactly one path")
				}
				id, err := r.Resolve(rev)
				if err != nil {
					return err
				}
				entries, err := r.LogPaths(id, repo.LogOptions{N: c.Int("n"), Paths: paths, Follow: c.Bool("follow")})
				if err != nil {
					return err
				}
				withChanges := c.Bool("stat") || c.Bool("name-status")
				changes := make([][]repo.FileStatus, len(entries))
				if withChanges {
					for i, e := range entries {
						if changes[i], err = commitChanges(c, r, e, paths, c.Bool("stat")); err != nil {
							return err
						}
					}
				}
				if st.json {
					type entryJSON struct {
						commitJSON
						Path    string            `json:"path,omitempty"`
						Changes []repo.FileStatus `json:"changes,omitempty"`
					}
					out := make([]entryJSON, len(entries))
					for i, e := range entries {
						out[i] = entryJSON{toCommitJSON(e.ID, e.Commit), e.Path, changes[i]}
						if withChanges && out[i].Changes == nil {
							out[i].Changes = []repo.FileStatus{}
						}
					}
					return st.printJSON(out)
				}
				for i, e := range entries {
					if c.Bool("oneline") {
						st.printf("%s %s\n", e.ID.Short(), firstLine(e.Message))
					} else {
						st.printCommit(e.ID, e.Commit)
					}
					switch {
					case c.Bool("stat"):
						printStat(st, changes[i])
					case c.Bool("name-status"):
						printNameStatus(st, changes[i])
					}
					if withChanges && c.Bool("oneline") {
						st.printf("\n")
					}
				}
				return nil
			}),
		},
		{
			Name:      "show",
			Usage:     "show a commit and its changes against its parent (a merge: against each parent)",
			ArgsUsage: "[REV]",
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "stat", Usage: "lines each file gained and lost, not the patch"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				id, err := r.Resolve(revArg(c))
				if err != nil {
					return err
				}
				cm, err := r.Store.ReadCommit(id)
				if err != nil {
					return err
				}
				// One diff per parent: a merge shows what it changed
				// against each side.
				var diffs []*repo.DiffResult
				if len(cm.Parents) == 0 {
					d, err := r.DiffRoot(id)
					if err != nil {
						return err
					}
					diffs = append(diffs, d)
				}
				for _, p := range cm.Parents {
					d, err := r.Diff(c.Context, []string{p.String(), id.String()}, nil)
					if err != nil {
						return err
					}
					if err := r.DetectRenames(c.Context, d); err != nil {
						return err
					}
					if c.Bool("stat") || st.json {
						if err := r.CountLines(c.Context, d); err != nil {
							return err
						}
					}
					diffs = append(diffs, d)
				}
				if st.json {
					type parentJSON struct {
						Parent  object.ID         `json:"parent"`
						Changes []repo.FileStatus `json:"changes"`
					}
					var by []parentJSON
					if len(cm.Parents) > 1 {
						for i, p := range cm.Parents {
							by = append(by, parentJSON{p, diffs[i].Changes})
						}
					}
					return st.printJSON(struct {
						commitJSON
						Changes  []repo.FileStatus `json:"changes"`
						ByParent []parentJSON      `json:"byParent,omitempty"`
					}{toCommitJSON(id, cm), diffs[0].Changes, by})
				}
				st.printCommit(id, cm)
				for i, d := range diffs {
					if len(cm.Parents) > 1 {
						st.printf("Changes against parent %d (%s):\n", i+1, cm.Parents[i].Short())
						if len(d.Changes) == 0 {
							st.printf("(none)\n")
						}
					}
					if c.Bool("stat") {
						printStat(st, d.Changes)
						continue
					}
					if err := r.WritePatch(c.Context, st.stdout, d); err != nil {
						return err
					}
				}
				return nil
			}),
		},
		{
			Name:      "ls",
			Usage:     "list a directory of a commit",
			ArgsUsage: "[REV[:PATH]]",
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "r", Aliases: []string{"recursive"}, Usage: "list subdirectories too"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				spec := revArg(c)
				e, _, err := r.ResolveEntry(spec)
				if err != nil {
					return err
				}
				_, base := repo.SplitSpec(spec)
				items, err := r.List(e, base, c.Bool("r"))
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(items)
				}
				for _, it := range items {
					st.printf("%-7s %12d %s  %s\n", it.Kind, it.Size, it.ID.Short(), quote(it.Path))
				}
				return nil
			}),
		},
		{
			Name:      "cat",
			Usage:     "print the content of a file in a commit",
			ArgsUsage: "REV:PATH",
			Action: repoAction(st, func(c *cli.Context) error {
				if c.NArg() != 1 || !strings.Contains(c.Args().First(), ":") {
					return usagef("cat takes one REV:PATH, e.g. HEAD:README.md")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				spec := c.Args().First()
				e, id, err := r.ResolveEntry(spec)
				if err != nil {
					return err
				}
				_, path := repo.SplitSpec(spec)
				switch e.Kind {
				case object.KindDir:
					return fmt.Errorf("%s in commit %s %w; use mesh ls %s", path, id.Short(), repo.ErrIsDirectory, spec)
				case object.KindSymlink:
					target, err := r.Store.ReadChunk(e.ID)
					if err != nil {
						return err
					}
					_, err = st.stdout.Write(target)
					return err
				}
				_, err = r.Store.WriteFileTo(c.Context, st.stdout, e.ID)
				return err
			}),
		},
		{
			Name:      "diff",
			Usage:     "show changes: HEAD against the working tree, REV against it, or REV against REV",
			ArgsUsage: "[REV [REV]] [-- PATH...]",
			Flags: []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "name-status", Usage: "only list changed paths"},
				&cli.BoolFlag{Name: "stat", Usage: "lines each file gained and lost, not the patch"},
				&cli.BoolFlag{Name: "no-renames", Usage: "show a moved file as a deletion and an addition"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if revs, _ := splitDashDash(st, c); len(revs) > 2 {
					return usagef("diff takes at most two revisions; put paths after --")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				revs, paths := splitDashDash(st, c)
				rel, err := relPaths(r, paths)
				if err != nil {
					return err
				}
				d, err := r.Diff(c.Context, revs, rel)
				if err != nil {
					return err
				}
				if !c.Bool("no-renames") {
					if err := r.DetectRenames(c.Context, d); err != nil {
						return err
					}
				}
				if c.Bool("stat") {
					if err := r.CountLines(c.Context, d); err != nil {
						return err
					}
				}
				if st.json {
					return st.printJSON(d)
				}
				switch {
				case c.Bool("stat"):
					printStat(st, d.Changes)
					return nil
				case c.Bool("name-status"):
					printNameStatus(st, d.Changes)
					return nil
				}
				return r.WritePatch(c.Context, st.stdout, d)
			}),
		},
		{
			Name:      "rev-parse",
			Usage:     "print the full commit ID a revision names",
			ArgsUsage: "REV...",
			Flags:     []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				var ids []object.ID
				for _, rev := range c.Args().Slice() {
					id, err := r.Resolve(rev)
					if err != nil {
						return err
					}
					ids = append(ids, id)
				}
				if st.json {
					return st.printJSON(ids)
				}
				for _, id := range ids {
					st.printf("%s\n", id)
				}
				return nil
			}),
		},
	}
}

// splitDashDash separates revisions from paths at "--". The flag parser
// swallows a leading "--", so the split is found in the raw arguments.
func splitDashDash(st *state, c *cli.Context) (revs, paths []string) {
	raw := st.args
	for i, a := range raw {
		if a == c.Command.Name {
			raw = raw[i+1:]
			break
		}
	}
	args := c.Args().Slice()
	for i, a := range raw {
		if a == "--" {
			// Everything after it is a path; the positional arguments
			// before it (flag values are not) are the revisions.
			paths = raw[i+1:]
			if n := len(args) - len(paths); n >= 0 {
				revs = args[:n]
			}
			if paths == nil {
				paths = []string{}
			}
			return revs, paths
		}
	}
	return args, nil
}

type commitJSON struct {
	ID         object.ID         `json:"id"`
	Tree       object.ID         `json:"tree"`
	Parents    []object.ID       `json:"parents"`
	Device     string            `json:"device"`
	DeviceName string            `json:"deviceName,omitempty"`
	Author     string            `json:"author"`
	Time       time.Time         `json:"time"`
	Message    string            `json:"message"`
	Conflicts  []object.Conflict `json:"conflicts,omitempty"`
}

func toCommitJSON(id object.ID, c *object.Commit) commitJSON {
	parents := c.Parents
	if parents == nil {
		parents = []object.ID{}
	}
	return commitJSON{ID: id, Tree: c.Tree, Parents: parents, Device: c.Device, DeviceName: c.DeviceName, Author: c.Author, Time: commitTime(c), Message: c.Message, Conflicts: c.Conflicts}
}

func commitTime(c *object.Commit) time.Time {
	return time.Unix(c.Time, 0).In(time.FixedZone("", int(c.TZ)*60))
}

func (st *state) printCommit(id object.ID, c *object.Commit) {
	st.printf("commit %s\n", id)
	if len(c.Parents) > 1 {
		var ps []string
		for _, p := range c.Parents {
			ps = append(ps, p.Short())
		}
		st.printf("Merge: %s\n", strings.Join(ps, " "))
	}
	dev := c.Device
	if dev == "" {
		dev = "(a merge: every device makes it alike)"
	}
	st.printf("Author: %s\nDevice: %s\nDate:   %s\n\n", c.Author, deviceLabel(dev, c.DeviceName), commitTime(c).Format("Mon Jan 2 15:04:05 2006 -0700"))
	for _, l := range strings.Split(strings.TrimRight(c.Message, "\n"), "\n") {
		st.printf("    %s\n", l)
	}
	st.printf("\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// logArgs splits log's arguments into a revision and paths: after "--"
// everything is a path; before it, the first argument is a revision if
// it names one, and the rest are paths (git's rule, without its
// ambiguity check: a name that is both is taken as the revision).
func logArgs(st *state, c *cli.Context, r *repo.Repo) (string, []string, error) {
	revs, paths := splitDashDash(st, c)
	hasDash := paths != nil
	if !hasDash && len(revs) > 0 {
		if _, err := r.Resolve(revs[0]); err != nil {
			// Not a revision: a path, if the folder or HEAD has it, as
			// git decides; a path gone from both needs "--".
			for _, p := range revs {
				if _, serr := os.Lstat(p); serr == nil {
					continue
				}
				if rel, rerr := r.RelPath(p); rerr == nil {
					if _, _, lerr := r.ResolveEntry("HEAD:" + rel); lerr == nil {
						continue
					}
				}
				return "", nil, fmt.Errorf("%w; or, for a path no longer in the folder, put it after --: mesh log -- %s", err, p)
			}
			revs, paths = nil, revs
		} else {
			revs, paths = revs[:1], revs[1:]
		}
	}
	if len(revs) > 1 {
		return "", nil, usagef("log takes one revision; put paths after --")
	}
	rev := "HEAD"
	if len(revs) == 1 {
		rev = revs[0]
	}
	rel, err := relPaths(r, paths) // nil for the repository's root: every commit
	if err != nil {
		return "", nil, err
	}
	return rev, rel, nil
}

// commitChanges is what commit e changed against its first parent (a
// root: everything), limited to paths, renames paired; with lines, the
// lines counted. Merges show none, as in git log.
func commitChanges(c *cli.Context, r *repo.Repo, e repo.LogEntry, paths []string, lines bool) ([]repo.FileStatus, error) {
	if len(e.Parents) > 1 {
		return nil, nil
	}
	var d *repo.DiffResult
	var err error
	if len(e.Parents) == 0 {
		d, err = r.DiffRoot(e.ID)
	} else {
		// Unlimited first, so a rename pairs with its other half.
		d, err = r.Diff(c.Context, []string{e.Parents[0].String(), e.ID.String()}, nil)
	}
	if err != nil {
		return nil, err
	}
	if err := r.DetectRenames(c.Context, d); err != nil {
		return nil, err
	}
	if e.Path != "" {
		paths = []string{e.Path}
	}
	if len(paths) > 0 {
		var kept []repo.FileStatus
		for _, ch := range d.Changes {
			for _, p := range paths {
				if under(ch.Path, p) || (ch.From != "" && under(ch.From, p)) {
					kept = append(kept, ch)
					break
				}
			}
		}
		d.Changes = kept
	}
	if lines {
		if err := r.CountLines(c.Context, d); err != nil {
			return nil, err
		}
	}
	return d.Changes, nil
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// printNameStatus prints a change a line: its letter and path, and for a
// rename R<score>, the old path and the new.
func printNameStatus(st *state, changes []repo.FileStatus) {
	for _, ch := range changes {
		if ch.Old != nil && ch.New != nil && ch.Old.Kind == object.KindDir && ch.New.Kind == object.KindDir {
			continue
		}
		if ch.Status == "renamed" {
			st.printf("R%03d\t%s\t%s\n", ch.Score, quote(ch.From), quote(ch.Path))
			continue
		}
		st.printf("%s\t%s\n", statusLetter(ch.Status), quote(ch.Path))
	}
}

// printStat prints git's --stat: a line per file with its changed lines
// and a bar of + and - (scaled to 40 marks at most), then the totals.
func printStat(st *state, changes []repo.FileStatus) {
	type row struct {
		name string
		ch   repo.FileStatus
	}
	var rows []row
	ins, del, width, most := 0, 0, 0, 0
	for _, ch := range changes {
		dir := func(e *object.Entry) bool { return e == nil || e.Kind == object.KindDir }
		if dir(ch.Old) && dir(ch.New) {
			continue
		}
		name := quote(ch.Path)
		if ch.Status == "renamed" {
			name = quote(ch.From) + " => " + quote(ch.Path)
		}
		ins += ch.Added
		del += ch.Deleted
		width = max(width, len(name))
		most = max(most, ch.Added+ch.Deleted)
		rows = append(rows, row{name, ch})
	}
	if len(rows) == 0 {
		return
	}
	const barMax = 40
	for _, r := range rows {
		if r.ch.Binary {
			st.printf(" %-*s | Bin\n", width, r.name)
			continue
		}
		plus, minus := r.ch.Added, r.ch.Deleted
		if most > barMax {
			plus, minus = scaleBar(plus, most, barMax), scaleBar(minus, most, barMax)
		}
		st.printf(" %-*s | %d %s%s\n", width, r.name, r.ch.Added+r.ch.Deleted, strings.Repeat("+", plus), strings.Repeat("-", minus))
	}
	line := fmt.Sprintf(" %d file%s changed", len(rows), plural(len(rows)))
	if ins > 0 || del == 0 {
		line += fmt.Sprintf(", %d insertion%s(+)", ins, plural(ins))
	}
	if del > 0 || ins == 0 {
		line += fmt.Sprintf(", %d deletion%s(-)", del, plural(del))
	}
	st.printf("%s\n", line)
}

func scaleBar(n, most, width int) int {
	if n == 0 {
		return 0
	}
	return max(1, n*width/most)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
