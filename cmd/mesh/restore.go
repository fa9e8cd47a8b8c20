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
			},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				meter := progress.Start(os.Stderr, "restore")
				paths, err := relPaths(r, c.Args().Slice())
				if err != nil {
					meter.Done()
					return err
				}
				res, err := r.Restore(c.Context, repo.RestoreOptions{Source: c.String("source"), To: c.String("to"), Paths: paths, Meter: meter})
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
