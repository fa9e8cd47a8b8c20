package main

import (
	"fmt"
	"sort"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
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
				kept, err := r.KeptNames()
				if err != nil {
					return err
				}
				if st.json {
					if open == nil {
						open = []repo.OpenConflict{}
					}
					for _, k := range kept {
						open = append(open, repo.OpenConflict{Conflict: object.Conflict{Path: k.Path, Copy: k.As}, Kind: "name", Why: k.Why,
							PathBytes: repo.RawName(k.Path), CopyBytes: repo.RawName(k.As)})
					}
					return st.printJSON(open)
				}
				for _, k := range open {
					printConflict(st, k)
				}
				for _, k := range kept {
					st.printf("name: %s\n", keptLine(k))
				}
				return nil
			}),
		},
		{
			Name:      "resolve",
			Usage:     "mark every conflict at PATH resolved (after editing it) and commit",
			ArgsUsage: "PATH",
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "remove-copy", Usage: "delete every conflict copy of PATH kept beside the file"}},
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
				for _, c := range res.RemovedCopies {
					st.printf("removed %s\n", quote(c))
				}
				if res.Ended > 1 {
					st.printf("resolved %d conflicts at %s in %s\n", res.Ended, quote(res.Path), res.Commit)
				} else {
					st.printf("resolved %s in %s\n", quote(res.Path), res.Commit)
				}
				return nil
			}),
		},
	}
}

func printConflict(st *state, k repo.OpenConflict) {
	st.printf("conflict: %s\n", conflictLine(k))
}

// keptLine says where a path the folder cannot hold is kept, and why.
func keptLine(k repo.KeptName) string {
	return fmt.Sprintf("%s is kept as %s: %s", quote(k.Path), quote(k.As), k.Why)
}

// conflictLine says what a conflict is and where each version is.
func conflictLine(k repo.OpenConflict) string {
	switch {
	case k.Copy != "":
		return fmt.Sprintf("%s (%s is kept as %s)", quote(k.Path), k.Whose(), quote(k.Copy))
	case k.Ours.IsZero() || k.Theirs.IsZero():
		return fmt.Sprintf("%s (changed on one side, deleted on the other: the change is kept)", quote(k.Path))
	}
	return fmt.Sprintf("%s (both versions are in the file, between markers)", quote(k.Path))
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
	printConflicts(st, res.Conflicts)
}

// printConflicts prints conflicts a command made, and what to do next.
func printConflicts(st *state, ks []repo.OpenConflict) {
	for _, k := range ks {
		printConflict(st, k)
	}
	if len(ks) > 0 {
		st.printf("%d conflict(s): both versions are kept; edit the file, then mesh resolve PATH (mesh conflicts lists them)\n", len(ks))
	}
}

// newConflicts are the open conflicts in after that before did not have.
func newConflicts(before, after []repo.OpenConflict) []repo.OpenConflict {
	type key struct {
		merge      object.ID
		path, copy string
	}
	had := map[key]bool{}
	for _, k := range before {
		had[key{k.Merge, k.Path, k.Copy}] = true
	}
	out := []repo.OpenConflict{}
	for _, k := range after {
		if !had[key{k.Merge, k.Path, k.Copy}] {
			out = append(out, k)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
