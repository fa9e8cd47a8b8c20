package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/syncer"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

func syncFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "gossip", Usage: "`HOST:PORT` gossip binds (default: what this device bound last time, else " + syncer.DefaultGossip + "; port 0 picks one and keeps it)"},
		&cli.StringFlag{Name: "listen", Usage: "`HOST:PORT` this device serves objects on, TLS (default: what it bound last time, else " + syncer.DefaultListen + ")"},
		&cli.StringFlag{Name: "advertise", Usage: "`HOST` other devices reach this one at (default: the bind host, or this machine's first network address when bound to all)"},
		&cli.StringFlag{Name: "join", Usage: "gossip `ADDR,...` of devices to join (remembered ones and the remotes' are tried too)"},
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

// aloneError says what a sync that reached nobody tried and what to do.
func aloneError(res *syncer.Round) error {
	tried := "no address is known: this device never met another one"
	if len(res.Tried) > 0 {
		tried = "none answered at " + strings.Join(res.Tried, ", ")
	}
	for _, name := range slices.Sorted(maps.Keys(res.Missing)) {
		tried += "; " + name + ": " + res.Missing[name]
	}
	kept := ""
	if !res.Committed.IsZero() {
		kept = fmt.Sprintf(" (local changes are committed as %s)", res.Committed.Short())
	}
	return fmt.Errorf("%w%s: %s; start mesh daemon on another device and give its gossip address (its .mesh/gossip.addr) with --join HOST:PORT", syncer.ErrAlone, kept, tried)
}

func syncCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:  "sync",
			Usage: "one round with the mesh: commit local changes, announce, fetch every head heard of, merge, update the folder; exits when this device has them all",
			Flags: append(syncFlags(), jsonFlag,
				&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up after this long"}),
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				log := slog.New(slog.NewTextHandler(st.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				s, err := syncer.Start(c.Context, r, sessionOptions(c, log))
				if err != nil {
					return err
				}
				defer s.Close()
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
				defer cancel()
				before, err := r.Conflicts()
				if err != nil {
					return err
				}
				res, err := s.SyncUntilDone(ctx)
				if err != nil {
					return err
				}
				after, err := r.Conflicts()
				if err != nil {
					return err
				}
				created := newConflicts(before, after)
				if st.json {
					out := struct {
						*syncer.Round
						Conflicts []repo.OpenConflict `json:"conflicts"`
					}{res, created}
					if err := st.printJSON(out); err != nil {
						return err
					}
				} else {
					if !res.Committed.IsZero() {
						st.printf("committed %s\n", res.Committed.Short())
					}
					printConflicts(st, created)
				}
				if res.Reached == 0 {
					return aloneError(res)
				}
				if !st.json {
					st.printf("in sync with %d devices at %s\n", res.Reached, res.Head.Short())
				}
				return nil
			}),
		},
		{
			Name:  "daemon",
			Usage: "keep this folder in sync with the mesh until interrupted: serve, gossip, commit changes as they settle, fetch and merge",
			Flags: append(syncFlags(),
				&cli.StringSliceFlag{Name: "artifacts", Usage: "mirror the artifact branches matching `PATTERN` (artifacts/*): fetch each newer version published anywhere in the mesh, and serve it to the swarm"},
				&cli.StringFlag{Name: "ui", Usage: "serve the history browser (mesh ui) on `HOST:PORT` too; its URL is logged and kept in .mesh/ui.url"}),
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
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
				uiDone := make(chan error, 1)
				uiCtx, uiStop := context.WithCancel(c.Context)
				defer uiStop()
				if addr := c.String("ui"); addr != "" {
					u, serve, err := startUI(st, r, addr, true, s.Metrics)
					if err != nil {
						s.Close()
						return err
					}
					log.Info("History browser", "url", u)
					go func() { uiDone <- serve(uiCtx) }()
				} else {
					uiDone <- nil
				}
				err = s.Run(c.Context)
				uiStop()
				if uerr := <-uiDone; err == nil && uerr != nil {
					err = uerr
				}
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
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				type peer struct {
					gossip.Peer
					Refused []syncer.Refusal `json:"refused,omitempty"`
				}
				refused := map[string][]syncer.Refusal{}
				for _, rf := range syncer.LoadRefused(r.Meta) {
					refused[rf.Device] = append(refused[rf.Device], rf)
				}
				ps := []peer{}
				for _, p := range syncer.LoadPeers(r.Meta) {
					ps = append(ps, peer{Peer: p, Refused: refused[p.Device]})
					delete(refused, p.Device)
				}
				for _, dev := range sortedKeys(refused) {
					ps = append(ps, peer{Peer: gossip.Peer{Device: dev}, Refused: refused[dev]})
				}
				if st.json {
					// Readable keys: the heads as they are, not as the
					// gossip wire signs them.
					type headJSON struct {
						Branch string    `json:"branch"`
						Commit object.ID `json:"commit"`
						Seq    uint64    `json:"seq"`
						Addr   string    `json:"fetchAddr,omitempty"`
					}
					type peerJSON struct {
						Device      string           `json:"device"`
						GossipAddr  string           `json:"gossipAddr,omitempty"`
						FetchAddr   string           `json:"fetchAddr,omitempty"`
						Alive       bool             `json:"alive"`
						LastContact time.Time        `json:"lastContact,omitzero"`
						Heads       []headJSON       `json:"heads"`
						Refused     []syncer.Refusal `json:"refused"`
					}
					out := make([]peerJSON, 0, len(ps))
					for _, p := range ps {
						pj := peerJSON{Device: p.Device, GossipAddr: p.GossipAddr, FetchAddr: p.FetchAddr, Alive: p.Alive, LastContact: p.LastContact, Refused: p.Refused}
						for _, h := range p.Heads {
							pj.Heads = append(pj.Heads, headJSON{Branch: h.Branch, Commit: h.Commit, Seq: h.Seq, Addr: h.Addr})
						}
						out = append(out, pj)
					}
					return st.printJSON(out)
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
					for _, rf := range p.Refused {
						st.printf("  refused %s@%s since %s: %s\n", rf.Branch, rf.Commit.Short(), rf.Since.Format(time.RFC3339), rf.Reason)
					}
				}
				return nil
			}),
		},
	}
}
