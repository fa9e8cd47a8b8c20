package main

import (
	"fmt"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

func maintCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:  "fsck",
			Usage: "check the store: structure, hashes of metadata, and reachability (--read-data re-hashes every chunk)",
			Flags: []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "read-data", Usage: "also read and re-hash every chunk"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				rep, err := object.Fsck(c.Context, r.Store, r.Refs, c.Bool("read-data"))
				if err != nil {
					return err
				}
				if st.json {
					if err := st.printJSON(rep); err != nil {
						return err
					}
				} else {
					st.printf("checked %d packs, %d objects (%d reachable, %d unreachable)", rep.Packs, rep.Objects, rep.Reachable, rep.Unreachable)
					if rep.ChunksRead > 0 {
						st.printf(", re-hashed %d chunks", rep.ChunksRead)
					}
					st.printf("\n")
					for _, s := range rep.Stray {
						st.printf("stray file left by an interrupted writer (mesh gc removes it): %s\n", s)
					}
					for _, p := range rep.Problems {
						if p.Object.IsZero() {
							st.printf("error: %s\n", p.What)
						} else {
							st.printf("error: object %s: %s\n", p.Object, p.What)
						}
					}
				}
				if n := len(rep.Problems); n > 0 {
					return fmt.Errorf("fsck found %d problem(s): %w", n, object.ErrCorrupt)
				}
				return nil
			}),
		},
		{
			Name:  "gc",
			Usage: "delete objects no ref, HEAD or reflog entry needs",
			Flags: []cli.Flag{jsonFlag, &cli.DurationFlag{Name: "grace", Value: object.DefaultGrace, Usage: "leave packs younger than this alone (protects concurrent writers)"},
				&cli.IntFlag{Name: "keep", Usage: "first forget all but the newest `N` versions of each artifact branch (mesh publish)"},
				&cli.DurationFlag{Name: "keep-within", Usage: "first forget artifact versions older than `DUR` (with --keep: keep what either keeps)"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if c.Int("keep") < 0 {
					return usagef("--keep takes a positive number")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				now := time.Now()
				var kept *repo.RetainResult
				if c.IsSet("keep") || c.IsSet("keep-within") {
					var err error
					if kept, err = r.Retain(c.Context, repo.RetainOptions{Last: c.Int("keep"), Within: c.Duration("keep-within")}, now); err != nil {
						return err
					}
				}
				lock, err := r.Lock(c.Context)
				if err != nil {
					return err
				}
				defer lock.Release()
				res, err := object.GC(c.Context, r.Store, r.Refs, c.Duration("grace"), now)
				if err != nil {
					return err
				}
				res.StraysRemoved += object.RemoveStrays(r.Meta, now.Add(-c.Duration("grace")))
				if st.json {
					if kept != nil {
						return st.printJSON(struct {
							*object.GCResult
							*repo.RetainResult
						}{res, kept})
					}
					return st.printJSON(res)
				}
				if kept != nil {
					st.printf("forgot %d old version(s) of %d artifact branch(es)\n", kept.Dropped, kept.Branches)
				}
				st.printf("dropped %d objects (%d bytes), rewrote %d packs, deleted %d packs, removed %d stray files\n",
					res.ObjectsDropped, res.BytesFreed, res.PacksRewritten, res.PacksDeleted, res.StraysRemoved)
				return nil
			}),
		},
	}
}
