package main

import (
	"fmt"
	"os"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/urfave/cli/v2"
)

func repoCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "init",
			Usage:     "create a repository in DIR (default: the current directory)",
			ArgsUsage: "[DIR]",
			Flags:     []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "nested", Usage: "allow DIR inside another repository's folder (which then commits its files, not its .mesh)"}},
			Action: action(st, func(c *cli.Context) error {
				dir := c.Args().First()
				if dir == "" {
					dir = "."
				}
				r, err := repo.InitNested(dir, nil, c.Bool("nested"))
				if err != nil {
					return err
				}
				defer r.Close()
				if st.json {
					return st.printJSON(map[string]any{"root": r.Root, "device": r.Config.Device, "mesh": r.Config.Mesh, "chunking": r.Config.Chunking})
				}
				st.printf("Initialized empty mesh repository in %s (a new mesh; add devices with mesh invite)\n", r.Meta)
				return nil
			}),
		},
		{
			Name:  "id",
			Usage: "print this device's ID (derived from its key; give it to the devices that should trust it)",
			Flags: []cli.Flag{jsonFlag},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				ident, err := r.Identity()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(map[string]string{"device": ident.ID.String()})
				}
				st.printf("%s\n", ident.ID)
				return nil
			}),
		},
		{
			Name:  "status",
			Usage: "show how the working tree differs from HEAD",
			Flags: []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "short", Aliases: []string{"s"}, Usage: "one line per path"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				s, err := r.Status(c.Context)
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(s)
				}
				for _, p := range s.Nested {
					fmt.Fprintf(st.stderr, "mesh: %s/ is a repository of its own: its files are committed here, its .mesh is not\n", p)
				}
				for _, p := range s.Reserved {
					fmt.Fprintf(st.stderr, "mesh: %s is left out: a file or folder named .mesh (in any case) cannot be committed; rename it, or add it to .meshignore\n", p)
				}
				if !c.Bool("short") {
					if s.Branch != "" {
						st.printf("On branch %s\n", s.Branch)
					} else {
						st.printf("HEAD detached at %s\n", s.Head.Short())
					}
					if s.Head.IsZero() {
						st.printf("No commits yet\n")
					}
					if s.Clean() {
						st.printf("nothing to commit, working tree clean\n")
						return nil
					}
				}
				for _, ch := range s.Changes {
					st.printf("%s %s\n", statusLetter(ch.Status), ch.Path)
				}
				return nil
			}),
		},
		{
			Name:  "commit",
			Usage: "snapshot the whole working tree (there is no staging area)",
			Flags: []cli.Flag{
				jsonFlag,
				&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "the commit message (required)"},
				&cli.BoolFlag{Name: "allow-empty", Usage: "commit even when nothing changed"},
			},
			Action: repoAction(st, func(c *cli.Context) error {
				if !c.IsSet("message") {
					return usagef("commit needs a message: mesh commit -m MESSAGE")
				}
				return nil
			}, func(c *cli.Context, r *repo.Repo) error {
				meter := progress.Start(os.Stderr, "commit")
				res, err := r.Commit(c.Context, repo.CommitOptions{Message: c.String("message"), AllowEmpty: c.Bool("allow-empty"), Meter: meter})
				meter.Done()
				if err != nil {
					return err
				}
				if st.json {
					return st.printJSON(res)
				}
				if !res.Created {
					st.printf("nothing to commit, working tree clean (HEAD is %s)\n", res.ID)
					return nil
				}
				st.printf("%s\n", res.ID)
				return nil
			}),
		},
	}
}

func statusLetter(s string) string {
	switch s {
	case "added":
		return "A"
	case "deleted":
		return "D"
	case "type":
		return "T"
	}
	return "M"
}
