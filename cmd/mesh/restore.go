package main

import (
	"os"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/urfave/cli/v2"
)

func restoreCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "restore",
			Usage:     "make paths (default: all) match a commit, in the working tree or in another directory",
			ArgsUsage: "[PATH...]",
			Flags: []cli.Flag{
				jsonFlag,
				&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Usage: "the commit to restore from (default HEAD)"},
				&cli.StringFlag{Name: "to", Usage: "write into `DIR` instead of the working tree"},
				&cli.BoolFlag{Name: "force", Aliases: []string{"discard", "f"}, Usage: "overwrite uncommitted changes to the paths, saving them first in commit \"discarded\" (mesh restore --source discarded PATH brings them back)"},
			},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				meter := progress.Start(os.Stderr, "restore")
				paths, err := relPaths(r, c.Args().Slice())
				if err != nil {
					meter.Done()
					return err
				}
				if c.Bool("force") && c.String("to") != "" {
					meter.Done()
					return usagef("restore --to writes elsewhere and never overwrites; --force is for the working tree")
				}
				res, err := r.Restore(c.Context, repo.RestoreOptions{Source: c.String("source"), To: c.String("to"), Paths: paths, Force: c.Bool("force"), Meter: meter})
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				st.printf("restored %d file(s) from %s into %s", res.Written, res.Source.Short(), res.To)
				if res.Removed > 0 {
					st.printf(", removed %d", res.Removed)
				}
				st.printf("\n")
				if len(res.Discarded) > 0 {
					st.printf("discarded uncommitted changes to %d path(s); they are kept in commit %s (ref %s):\n", len(res.Discarded), res.Saved.Short(), repo.DiscardedRef)
					for _, p := range res.Discarded {
						st.printf("\t%s\n", quote(p))
					}
					st.printf("bring one back with: mesh restore --source %s PATH\n", repo.DiscardedRef)
				}
				return nil
			}),
		},
		{
			Name:      "checkout",
			Usage:     "move HEAD to REV and update the working tree (refuses to overwrite uncommitted changes)",
			ArgsUsage: "REV",
			Flags:     []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				meter := progress.Start(os.Stderr, "checkout")
				res, err := r.Checkout(c.Context, c.Args().First(), meter)
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				if res.Branch != "" {
					st.printf("switched to branch %s at %s\n", res.Branch, res.ID.Short())
				} else {
					st.printf("HEAD is now at %s (detached)\n", res.ID.Short())
				}
				return nil
			}),
		},
	}
}

// relPaths turns command-line paths into paths from the repository root;
// "." anywhere means the whole tree.
func relPaths(r *repo.Repo, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		p, err := r.RelPath(a)
		if err != nil {
			return nil, usagef("%v", err)
		}
		if p == "" {
			return nil, nil
		}
		out = append(out, p)
	}
	return out, nil
}
