package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/syncer"
	"github.com/urfave/cli/v2"
)

func artifactCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "publish",
			Usage:     "snapshot files or folders (anywhere) as a new version on an artifact branch, for mesh get; one folder alone becomes the root",
			ArgsUsage: "PATH...",
			Flags: []cli.Flag{jsonFlag,
				&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "the artifact `BRANCH` (default artifacts/<name of the first PATH>)"},
				&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "the version's message"},
			},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				res, err := r.Publish(c.Context, repo.PublishOptions{Branch: c.String("branch"), Message: c.String("message"), Paths: c.Args().Slice()})
				if errors.Is(err, fs.ErrNotExist) && st.chdir != "" {
					// As in git and tar, -C moves where relative paths start.
					return fmt.Errorf("%w (relative paths start in %s, the folder -C gave; give an absolute one, e.g. \"$PWD/dist\")", err, st.chdir)
				}
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				st.printf("%s\n", res.ID)
				where := "run mesh serve or mesh daemon here so that others can mesh get it"
				if b, err := os.ReadFile(r.Meta + "/" + repo.ServeAddrFile); err == nil {
					where = "served at " + strings.TrimSpace(string(b))
					if _, err := os.Stat(r.Meta + "/" + syncer.GossipAddrFile); err == nil {
						where += ", announced by the running daemon"
					}
				}
				st.eprintf("published %d file(s), %s, as %s on %s (%s)\n", res.Files, progress.Size(res.Bytes), res.ID.Short(), res.Branch, where)
				return nil
			}),
		},
		{
			Name:      "get",
			Usage:     "fetch one commit (or a file or folder of it) from SOURCE into DIR, every byte verified, sharing the load with every other device getting it; needs no repository",
			ArgsUsage: "SOURCE REV[:PATH]",
			Description: "SOURCE is HOST:PORT or tls://HOST:PORT (the mesh secret comes from an invite token in $" + repo.TokenEnv + "),\n" +
				"an invite token, or the path of a repository. REV is a branch (artifacts/NAME), a commit ID,\n" +
				"or an abbreviation of a branch tip's ID. Objects are kept in a cache, so a later get of a\n" +
				"related version fetches only new chunks. While it fetches, get serves what it has to the\n" +
				"other devices fetching the same commit (see --seed-for, --no-seed).",
			Flags: []cli.Flag{jsonFlag,
				&cli.StringFlag{Name: "to", Usage: "write into `DIR` (new or empty)"},
				&cli.StringFlag{Name: "cache", Usage: "the object cache `DIR` (default: the user's cache directory/mesh)"},
				&cli.DurationFlag{Name: "seed-for", Usage: "after writing DIR, keep serving the others this long"},
				&cli.StringFlag{Name: "seed-listen", Usage: "serve the swarm on `ADDR` (default: an ephemeral port)"},
				&cli.StringFlag{Name: "seed-addr", Usage: "the `HOST:PORT` others dial for it (default: this machine's address towards SOURCE)"},
				&cli.BoolFlag{Name: "no-seed", Usage: "serve nobody; fetch only"},
				&cli.DurationFlag{Name: "timeout", Value: time.Hour, Usage: "give up after this long"},
			},
			Action: action(st, func(c *cli.Context) error {
				if c.String("to") == "" {
					return usagef("get needs --to DIR, the new or empty folder to write into")
				}
				rev, p := repo.SplitSpec(c.Args().Get(1))
				log := slog.New(slog.NewTextHandler(st.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
				defer cancel()
				ctx, meter := st.meter(ctx, "get")
				res, g, err := repo.Get(ctx, repo.GetOptions{
					Source: c.Args().Get(0), Rev: rev, Path: p, To: c.String("to"), Cache: c.String("cache"),
					Token: os.Getenv(repo.TokenEnv), SeedListen: c.String("seed-listen"), SeedAddr: c.String("seed-addr"),
					NoSeed: c.Bool("no-seed"), Log: log,
				})
				meter.Done()
				defer g.Close()
				if err != nil {
					return err
				}
				if st.json {
					if err := st.printJSON(res); err != nil {
						return err
					}
				} else {
					from := perDevice(res.Received)
					if from != "" {
						from = "; " + from
					}
					st.printf("%s: %d file(s), %s into %s (received %s%s)\n", res.Commit.Short(), res.Files, progress.Size(res.Bytes), res.To, progress.Size(res.Fetched.Bytes), from)
				}
				if d := c.Duration("seed-for"); d > 0 {
					sctx, scancel := context.WithTimeout(c.Context, d)
					defer scancel()
					if err := g.Seed(sctx); err != nil {
						log.Warn("Seeding ended early", "error", err)
					}
				}
				return nil
			}),
		},
	}
}

// perDevice lists the bytes received from each device as "DEV N; DEV N",
// in the order of their IDs.
func perDevice(received map[string]int64) string {
	devs := make([]string, 0, len(received))
	for d := range received {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	parts := make([]string, len(devs))
	for i, d := range devs {
		parts[i] = fmt.Sprintf("%s %s", shortDev(d), progress.Size(received[d]))
	}
	return strings.Join(parts, "; ")
}

func shortDev(d string) string {
	if i := strings.IndexByte(d, '-'); i > 0 {
		return d[:i]
	}
	return d
}

func (st *state) eprintf(format string, args ...any) {
	if !st.json {
		fmt.Fprintf(st.stderr, format, args...)
	}
}
