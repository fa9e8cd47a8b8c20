package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

func maintCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "fsck",
			Usage:     "check the store: structure, hashes of metadata, and reachability (--read-data re-hashes every chunk)",
			ArgsUsage: "[--repair [REMOTE]]",
			Flags: []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "read-data", Usage: "also read and re-hash every chunk"},
				&cli.StringFlag{Name: "remote", Usage: "check the bucket `REMOTE` (a cloud peer, s3://) instead: every index, ref and object it names"},
				&cli.BoolFlag{Name: "repair", Usage: "rebuild lost or damaged pack indexes, and fetch every damaged or missing object again from REMOTE (default: every remote), then check again"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if c.NArg() > 1 || (c.NArg() == 1 && !c.Bool("repair")) {
					return usagef("fsck takes no arguments; fsck --repair takes at most one remote")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				if name := c.String("remote"); name != "" {
					return fsckBucket(c, st, r, name)
				}
				var rep *object.FsckReport
				var err error
				if c.Bool("repair") {
					var res *repo.RepairResult
					res, rep, err = r.Repair(c.Context, c.Args().First())
					if st.json && res != nil {
						st.printJSON(res)
					} else if res != nil {
						for _, l := range res.Indexes {
							st.printf("%s\n", l)
						}
						if res.Repaired > 0 {
							st.printf("fetched %d damaged or missing objects again from %s, dropped %d damaged copies\n", res.Repaired, strings.Join(res.From, ", "), res.Dropped)
						}
						for name, why := range res.Unreached {
							st.printf("could not ask %s: %s\n", name, why)
						}
					}
					if err != nil || rep == nil {
						return err
					}
				} else if rep, err = object.Fsck(c.Context, r.Store, r.Refs, c.Bool("read-data")); err != nil {
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
						st.printf("temporary file left by an interrupted writer (mesh gc removes it): %s\n", s)
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
					hint := ""
					if len(rep.Damaged)+len(rep.Missing) > 0 {
						hint = "; mesh fsck --repair fetches damaged and missing objects again from the remotes"
					}
					return fmt.Errorf("fsck found %d problem(s): %w%s", n, object.ErrCorrupt, hint)
				}
				return nil
			}),
		},
		{
			Name:  "gc",
			Usage: "delete objects no ref, HEAD or reflog entry needs",
			Flags: []cli.Flag{jsonFlag, &cli.DurationFlag{Name: "grace", Value: object.DefaultGrace, Usage: "leave packs younger than this alone (protects concurrent writers)"},
				&cli.IntFlag{Name: "keep", Usage: "first forget all but the newest `N` versions of each artifact branch (mesh publish)"},
				&cli.DurationFlag{Name: "keep-within", Usage: "first forget artifact versions older than `DUR` (with --keep: keep what either keeps)"},
				&cli.StringFlag{Name: "remote", Usage: "collect the bucket `REMOTE` (a cloud peer, s3://) instead: packs no device's ref needs and pushes cut short, once older than --grace"}},
			Action: repoAction(st, func(c *cli.Context) error {
				if c.Int("keep") < 0 {
					return usagef("--keep takes a positive number")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				now := time.Now()
				if name := c.String("remote"); name != "" {
					b, err := r.Bucket(name)
					if err != nil {
						return err
					}
					res, err := b.GC(c.Context, c.Duration("grace"), now)
					if err != nil {
						return err
					}
					if st.json {
						return st.printJSON(res)
					}
					st.printf("%s: deleted %d packs, rewrote %d, freed %s", b, res.PacksDeleted, res.PacksRewritten, progress.Size(res.BytesFreed))
					if res.PartlyUsed > 0 {
						st.printf("; kept %d packs partly needed, %s of them unused", res.PartlyUsed, progress.Size(res.Unused))
					}
					st.printf("\n")
					return nil
				}
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
				st.printf("dropped %d objects (%s), rewrote %d packs, deleted %d packs, removed %d stray files\n",
					res.ObjectsDropped, progress.Size(res.BytesFreed), res.PacksRewritten, res.PacksDeleted, res.StraysRemoved)
				if rp := res.Repack; rp.PacksMerged > 0 {
					st.printf("repacked %d packs into one: %d objects, %s; %d pack(s) now\n", rp.PacksMerged, rp.Objects, progress.Size(rp.Bytes), rp.PacksAfter)
				} else {
					st.printf("%d pack(s), nothing to repack\n", rp.PacksAfter)
				}
				return nil
			}),
		},
	}
}

// fsckBucket is mesh fsck --remote: a check of what a bucket holds.
func fsckBucket(c *cli.Context, st *state, r *repo.Repo, name string) error {
	if c.Bool("repair") {
		return usagef("fsck --remote checks a bucket; --repair mends this repository")
	}
	b, err := r.Bucket(name)
	if err != nil {
		return err
	}
	rep, err := b.Fsck(c.Context, c.Bool("read-data"))
	if err != nil {
		return err
	}
	if st.json {
		if err := st.printJSON(rep); err != nil {
			return err
		}
	} else {
		st.printf("%s: checked %d packs, %d objects (opened and hashed %d), %d refs\n", b, rep.Packs, rep.Objects, rep.Read, rep.Refs)
		for _, p := range rep.Unreferenced {
			st.printf("pack %s: no index names it (a push cut short; mesh gc --remote %s deletes it once older than the grace period)\n", p, name)
		}
		for _, p := range rep.Problems {
			st.printf("error: %s\n", p)
		}
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("fsck found %d problem(s) in %s: %w", n, b, object.ErrCorrupt)
	}
	return nil
}
