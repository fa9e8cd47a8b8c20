package main

import (
	"fmt"
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
			Usage:     "show commits reachable from REV (default HEAD), newest first",
			ArgsUsage: "[REV]",
			Flags:     []cli.Flag{jsonFlag, &cli.IntFlag{Name: "n", Aliases: []string{"max-count"}, Usage: "show at most `N` commits"}, &cli.BoolFlag{Name: "oneline", Usage: "one line per commit"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if c.Int("n") < 0 {
					return usagef("-n must not be negative")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				id, err := r.Resolve(revArg(c))
				if err != nil {
					return err
				}
				entries, err := r.Log(id, c.Int("n"))
				if err != nil {
					return err
				}
				if st.json {
					out := make([]commitJSON, len(entries))
					for i, e := range entries {
						out[i] = toCommitJSON(e.ID, e.Commit)
					}
					return st.printJSON(out)
				}
				for _, e := range entries {
					if c.Bool("oneline") {
						st.printf("%s %s\n", e.ID.Short(), firstLine(e.Message))
						continue
					}
					st.printCommit(e.ID, e.Commit)
				}
				return nil
			}),
		},
		{
			Name:      "show",
			Usage:     "show a commit and its changes against its first parent",
			ArgsUsage: "[REV]",
			Flags:     []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				id, err := r.Resolve(revArg(c))
				if err != nil {
					return err
				}
				cm, err := r.Store.ReadCommit(id)
				if err != nil {
					return err
				}
				revs := []string{id.String() + "^", id.String()}
				if len(cm.Parents) == 0 {
					revs = nil
				}
				var d *repo.DiffResult
				if revs != nil {
					if d, err = r.Diff(c.Context, revs, nil); err != nil {
						return err
					}
				} else if d, err = r.DiffRoot(id); err != nil {
					return err
				}
				if st.json {
					return st.printJSON(struct {
						commitJSON
						Changes []repo.FileStatus `json:"changes"`
					}{toCommitJSON(id, cm), d.Changes})
				}
				st.printCommit(id, cm)
				return r.WritePatch(c.Context, st.stdout, d)
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
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "name-status", Usage: "only list changed paths"}},
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
				if st.json {
					return st.printJSON(d)
				}
				if c.Bool("name-status") {
					for _, ch := range d.Changes {
						st.printf("%s\t%s\n", statusLetter(ch.Status), quote(ch.Path))
					}
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
	for i, a := range raw {
		if a == "--" {
			for _, r := range raw[:i] {
				if !strings.HasPrefix(r, "-") {
					revs = append(revs, r)
				}
			}
			return revs, raw[i+1:]
		}
	}
	return c.Args().Slice(), nil
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
