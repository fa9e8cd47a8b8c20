package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/remote"
	"github.com/urfave/cli/v2"
)

func remoteCommands(st *state) []*cli.Command {
	listRemotes := repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
		if st.json {
			rs := r.Config.Remotes
			if rs == nil {
				rs = map[string]repo.RemoteConfig{}
			}
			return st.printJSON(rs)
		}
		for _, n := range r.RemoteNames() {
			rc := r.Config.Remotes[n]
			st.printf("%s\t%s", n, rc.URL)
			if rc.Device != "" {
				st.printf("\t%s", rc.Device)
			}
			st.printf("\n")
		}
		return nil
	})
	return []*cli.Command{
		{
			Name:      "fetch",
			Usage:     "bring in the branches of REMOTE (a remote's name, tls://HOST:PORT or a path; default: every remote) as remotes/<name>/<branch>",
			ArgsUsage: "[REMOTE]",
			Flags:     []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				ctx, meter := st.meter(c.Context, "fetch")
				res, err := r.Fetch(ctx, c.Args().First())
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				for _, f := range res {
					printFetch(st, f)
				}
				return nil
			}),
		},
		{
			Name:      "pull",
			Usage:     "fetch REMOTE (default: every remote) and merge its branch of the current branch's name",
			ArgsUsage: "[REMOTE]",
			Flags:     []cli.Flag{jsonFlag, conflictStyleFlag, allowUnrelatedFlag},
			Action: repoAction(st, func(c *cli.Context) error {
				return checkConflictStyle(c)
			}, func(c *cli.Context, r *repo.Repo) error {
				ctx, meter := st.meter(c.Context, "pull")
				res, err := r.Pull(ctx, c.Args().First(), repo.MergeOptions{Markers: c.String("conflict-style") == "markers", AllowUnrelated: c.Bool("allow-unrelated")})
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				for _, f := range res.Fetched {
					printFetch(st, f)
				}
				for _, m := range res.Merged {
					printMerge(st, m)
				}
				return nil
			}),
		},
		{
			Name:      "push",
			Usage:     "send the current branch to REMOTE (default: every remote) as devices/<this device>/<branch> there, fast-forward only",
			ArgsUsage: "[REMOTE]",
			Flags:     []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				res, err := r.Push(c.Context, c.Args().First())
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				for _, p := range res {
					if p.UpToDate {
						st.printf("%s: up to date\n", p.Remote)
						continue
					}
					st.printf("%s: sent %d objects (%s); %s there\n", p.Remote, p.Objects, progress.Size(p.Bytes), p.Ref)
				}
				return nil
			}),
		},
		{
			Name:   "remote",
			Usage:  "list, add and remove remotes (alone: list them, as remote list)",
			Flags:  []cli.Flag{jsonFlag},
			Action: listRemotes,
			Subcommands: []*cli.Command{
				{
					Name:      "add",
					Usage:     "add a remote: the path of another repository, or tls://HOST:PORT of a device running mesh serve",
					ArgsUsage: "NAME URL",
					Flags:     []cli.Flag{&cli.StringFlag{Name: "device", Usage: "the device ID expected at URL (see mesh id there)"}},
					Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
						return r.AddRemote(c.Context, c.Args().Get(0), c.Args().Get(1), c.String("device"))
					}),
				},
				{
					Name:      "remove",
					Usage:     "forget a remote and its remotes/NAME/* refs",
					ArgsUsage: "NAME",
					Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
						return r.RemoveRemote(c.Context, c.Args().First())
					}),
				},
				{
					Name:   "list",
					Usage:  "list the remotes",
					Flags:  []cli.Flag{jsonFlag},
					Action: listRemotes,
				},
			},
		},
		{
			Name:  "serve",
			Usage: "serve this repository to the devices of its mesh over TLS until interrupted",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: ":7420", Usage: "`HOST:PORT` to listen on (port 0 picks a free one)"},
				&cli.StringFlag{Name: "advertise", Usage: "`HOST` other devices reach this one at, put in invite tokens (default: the listen host, or this machine's first network address when listening on all)"},
			},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				lock, err := r.LockServing()
				if err != nil {
					return err
				}
				defer lock.Release()
				ln, err := net.Listen("tcp", c.String("listen"))
				if err != nil {
					return fmt.Errorf("listen on %s: %w", c.String("listen"), err)
				}
				addr, err := remote.Advertised(ln.Addr().String(), c.String("advertise"))
				if err != nil {
					ln.Close()
					return err
				}
				log := slog.New(slog.NewTextHandler(st.stderr, nil))
				log.Info("Serving", "device", r.Config.Device, "mesh", r.Config.Mesh, "listen", ln.Addr().String(), "addr", addr)
				return r.Serve(c.Context, ln, addr, log)
			}),
		},
		{
			Name:  "invite",
			Usage: "print a token with which another device joins this mesh (it holds the mesh secret: send it privately)",
			Flags: []cli.Flag{&cli.StringFlag{Name: "addr", Usage: "`HOST:PORT` where the new device fetches the history (default: where mesh serve runs here)"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				tok, err := r.Invite(c.String("addr"))
				if err != nil {
					return err
				}
				st.printf("%s\n", tok)
				return nil
			}),
		},
		{
			Name:      "join",
			Usage:     "create a repository in DIR (default: here) as a new device of the mesh in TOKEN (\"-\" reads it from stdin), and fetch its history",
			ArgsUsage: "TOKEN [DIR]",
			Description: "DIR may hold files already: they are committed as this device's first commit and\n" +
				"merged with the mesh's history, so nothing in it is overwritten (where a file differs\n" +
				"from the mesh's version, both are kept, as in any conflict).",
			Flags: []cli.Flag{jsonFlag, nameFlag},
			Action: action(st, func(c *cli.Context) error {
				tok := c.Args().Get(0)
				if tok == "-" {
					line, err := bufio.NewReader(os.Stdin).ReadString('\n')
					if err != nil && line == "" {
						return usagef("join -: no token on stdin")
					}
					tok = strings.TrimSpace(line)
				}
				dir := c.Args().Get(1)
				if dir == "" {
					dir = "."
				}
				ctx, meter := st.meter(c.Context, "join")
				r, res, err := repo.Join(ctx, tok, dir, repo.JoinOptions{Name: c.String("name")})
				meter.Done()
				if r != nil {
					defer r.Close()
				}
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				st.printf("Joined mesh %s as device %s in %s\n", res.Mesh, deviceLabel(res.Device, res.Name), res.Root)
				if res.Adopted != nil {
					st.printf("adopted the %d file(s) already there as %s\n", res.Adopted.HashedFiles, res.Adopted.ID.Short())
				}
				if res.Fetched != nil {
					printFetch(st, res.Fetched)
				}
				printConflicts(st, res.Conflicts)
				if !res.Head.IsZero() {
					st.printf("checked out main at %s\n", res.Head.Short())
				}
				return nil
			}),
		},
	}
}

func printFetch(st *state, f *repo.FetchResult) {
	st.printf("%s: fetched %d objects (%s), %d already here\n", f.Remote, f.Objects, progress.Size(f.Bytes), f.Skipped)
	if len(f.Received) > 1 {
		// Other devices sent part of it: say how much each.
		st.printf("%s: chunks received from %s\n", f.Remote, perDevice(f.Received))
	}
	for _, ref := range sortedKeys(f.Refs) {
		st.printf("%s %s\n", f.Refs[ref].Short(), ref)
	}
}
