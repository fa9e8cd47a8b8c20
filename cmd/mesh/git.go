package main

import (
	"fmt"
	"strings"

	"github.com/mesh-sync/mesh/internal/gitio"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/urfave/cli/v2"
)

func gitCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "import-git",
			Usage:     "recreate a git repository's history (one branch) as mesh commits; run again, it imports only new commits",
			ArgsUsage: "GITDIR",
			Flags:     []cli.Flag{jsonFlag, &cli.StringFlag{Name: "branch", Usage: "the git branch to import (default: the one HEAD names)"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				ctx, meter := st.meter(c.Context, "import-git")
				res, err := r.ImportGit(ctx, c.Args().First(), c.String("branch"))
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				st.printf("imported %d commit(s) from %s, %d of its history were here already; %s is %s\n", res.Imported, res.Branch, res.Known, res.Ref, res.Head.Short())
				if n := len(res.Submodules); n > 0 {
					fmt.Fprintf(st.stderr, "mesh: %d submodule(s) left out (%s): mesh keeps no gitlinks; each commit that had one says so in a %q line\n", n, strings.Join(res.Submodules, ", "), strings.TrimSpace(gitio.SubmoduleTrailer))
				}
				if res.CheckedOut != nil {
					st.printf("checked out %s\n", res.Head.Short())
				} else if in, err := r.Contains(res.Head); err == nil && !in {
					st.printf("merge it with: mesh merge %s\n", res.Ref)
				}
				return nil
			}),
		},
		{
			Name:      "export-git",
			Usage:     "write REV (default HEAD) and its history into a git repository (created if absent), incrementally",
			ArgsUsage: "GITDIR [REV]",
			Flags:     []cli.Flag{jsonFlag, &cli.StringFlag{Name: "branch", Usage: "the git branch to set (default: the current branch)"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				ctx, meter := st.meter(c.Context, "export-git")
				res, err := r.ExportGit(ctx, c.Args().Get(0), c.Args().Get(1), c.String("branch"))
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				st.printf("exported %d commit(s), %d of the history were there already; git branch %s is %s\n", res.Exported, res.Known, res.Branch, res.GitHead[:12])
				return nil
			}),
		},
	}
}
