package main

import (
	"context"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/syncer"
	"github.com/urfave/cli/v2"
)

func syncFlags(gossipDefault, listenDefault string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "gossip", Value: gossipDefault, Usage: "`HOST:PORT` gossip binds (port 0 picks one)"},
		&cli.StringFlag{Name: "listen", Value: listenDefault, Usage: "`HOST:PORT` this device serves objects on (TLS)"},
		&cli.StringFlag{Name: "advertise", Usage: "`HOST` other devices reach this one at (default: the gossip host)"},
		&cli.StringFlag{Name: "join", Usage: "gossip `ADDR,...` of devices to join (remembered ones are tried too)"},
		&cli.BoolFlag{Name: "fast", Hidden: true, Usage: "short gossip intervals (loopback clusters)"},
	}
}

func sessionOptions(c *cli.Context, log *slog.Logger) syncer.Options {
	o := syncer.Options{Gossip: c.String("gossip"), Listen: c.String("listen"), Advertise: c.String("advertise"), Log: log, Fast: c.Bool("fast")}
	for _, a := range strings.Split(c.String("join"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.Join = append(o.Join, a)
		}
	}
	return o
}

func syncCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:  "sync",
			Usage: "one round with the mesh: commit local changes, announce, fetch every head heard of, merge, update the folder; exits when this device has them all",
			Flags: append(syncFlags("127.0.0.1:0", "127.0.0.1:0"), jsonFlag,
				&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up after this long"}),
			Action: repoAction(st, maxArgs("sync", 0), func(c *cli.Context, r *repo.Repo) error {
				log := slog.New(slog.NewTextHandler(st.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				s, err := syncer.Start(c.Context, r, sessionOptions(c, log))
				if err != nil {
					return err
				}
				defer s.Close()
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
				defer cancel()
				res, err := s.SyncUntilDone(ctx)
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				if !res.Committed.IsZero() {
					st.printf("committed %s\n", res.Committed.Short())
				}
				st.printf("in sync with %d devices at %s\n", len(res.Heads), res.Head.Short())
				return nil
			}),
		},
		{
			Name:  "daemon",
			Usage: "keep this folder in sync with the mesh until interrupted: serve, gossip, commit changes as they settle, fetch and merge",
			Flags: append(syncFlags("0.0.0.0:7421", ":7420"),
				&cli.StringSliceFlag{Name: "artifacts", Usage: "mirror the artifact branches matching `PATTERN` (artifacts/*): fetch each newer version published anywhere in the mesh, and serve it to the swarm"}),
			Action: repoAction(st, maxArgs("daemon", 0), func(c *cli.Context, r *repo.Repo) error {
				log := slog.New(slog.NewTextHandler(st.stderr, nil))
				o := sessionOptions(c, log)
				for _, p := range c.StringSlice("artifacts") {
					if _, err := path.Match(p, repo.ArtifactPrefix); err != nil || !strings.HasPrefix(p, repo.ArtifactPrefix) {
						return usagef("--artifacts %q: give a pattern of artifact branches, such as %s* or %sbuild", p, repo.ArtifactPrefix, repo.ArtifactPrefix)
					}
					o.Artifacts = append(o.Artifacts, p)
				}
				s, err := syncer.Start(c.Context, r, o)
				if err != nil {
					return err
				}
				err = s.Run(c.Context)
				log.Info("Stopping")
				if cerr := s.Close(); err == nil {
					err = cerr
				}
				return err
			}),
		},
		{
			Name:  "peers",
			Usage: "the devices this one has seen (as of the last sync or daemon round): address, heads, last contact",
			Flags: []cli.Flag{jsonFlag},
			Action: repoAction(st, maxArgs("peers", 0), func(c *cli.Context, r *repo.Repo) error {
				ps := syncer.LoadPeers(r.Meta)
				if st.json {
					if ps == nil {
						return st.printJSON([]any{})
					}
					return st.printJSON(ps)
				}
				for _, p := range ps {
					state := "gone"
					if p.Alive {
						state = "alive"
					}
					head := "-"
					for _, h := range p.Heads {
						head = h.Branch + "@" + h.Commit.Short()
					}
					contact := "never"
					if !p.LastContact.IsZero() {
						contact = p.LastContact.Format(time.RFC3339)
					}
					st.printf("%s  %s  fetch %s  %s  last contact %s\n", p.Device, state, p.FetchAddr, head, contact)
				}
				return nil
			}),
		},
	}
}
