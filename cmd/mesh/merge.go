package main

import (
	"sort"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/urfave/cli/v2"
)

func mergeCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "merge",
			Usage:     "merge REV into the current branch (fast-forward, or the deterministic merge commit)",
			ArgsUsage: "REV",
			Flags: []cli.Flag{
				jsonFlag,
				conflictStyleFlag,
				allowUnrelatedFlag,
			},
			Action: repoAction(st, func(c *cli.Context) error {
				return checkConflictStyle(c)
			}, func(c *cli.Context, r *repo.Repo) error {
				res, err := r.Merge(c.Context, c.Args().First(), repo.MergeOptions{Markers: c.String("conflict-style") == "markers", AllowUnrelated: c.Bool("allow-unrelated")})
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				printMerge(st, res)
				return nil
			}),
		},
		{
			Name:  "conflicts",
			Usage: "list conflicts that merges recorded and nobody resolved yet",
			Flags: []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				open, err := r.Conflicts()
				if err != nil {
					return err
				}
				if st.json {
					if open == nil {
						open = []repo.OpenConflict{}
					}
					return st.printJSON(open)
				}
				for _, k := range open {
					printConflict(st, k.Path, k.Copy, k.Device)
				}
				return nil
			}),
		},
		{
			Name:      "resolve",
			Usage:     "mark the conflict at PATH resolved (after editing it) and commit",
			ArgsUsage: "PATH",
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "remove-copy", Usage: "delete the conflict copy kept beside the file"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				p, err := r.RelPath(c.Args().First())
				if err != nil {
					return usagef("%v", err)
				}
				res, err := r.ResolveConflict(c.Context, p, c.Bool("remove-copy"))
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				if res.RemovedCopy != "" {
					st.printf("removed %s\n", res.RemovedCopy)
				}
				st.printf("resolved %s in %s\n", res.Path, res.Commit)
				return nil
			}),
		},
	}
}

func printConflict(st *state, path, copyPath, device string) {
	if copyPath != "" {
		st.printf("conflict: %s (the version of %s is kept as %s)\n", path, device, copyPath)
	} else {
		st.printf("conflict: %s\n", path)
	}
}

var allowUnrelatedFlag = &cli.BoolFlag{Name: "allow-unrelated", Usage: "merge a history that shares no commit with this one"}

var conflictStyleFlag = &cli.StringFlag{Name: "conflict-style", Value: "copy", Usage: "copy: keep the other version beside the file; markers: write conflict markers into text files"}

func checkConflictStyle(c *cli.Context) error {
	if s := c.String("conflict-style"); s != "copy" && s != "markers" {
		return usagef("--conflict-style is copy or markers, not %q", s)
	}
	return nil
}

func printMerge(st *state, res *repo.MergeResult) {
	switch {
	case res.UpToDate:
		st.printf("already up to date\n")
	case res.FastForward:
		st.printf("fast-forward to %s\n", res.ID.Short())
	default:
		st.printf("merged: %s\n", res.ID)
	}
	for _, k := range res.Conflicts {
		printConflict(st, k.Path, k.Copy, k.Device)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
