package main

import (
	"fmt"
	"os"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

// nameFlag is --name for init and join.
var nameFlag = &cli.StringFlag{Name: "name", Usage: "the device's `NAME`, as conflict copies and messages show it (default: the host name; mesh config name changes it)"}

// deviceLabel is a device for people: "NAME (ID)", or the ID.
func deviceLabel(id, name string) string {
	if name == "" {
		return id
	}
	return name + " (" + id + ")"
}

func repoCommands(st *state) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "init",
			Usage:     "create a repository in DIR (default: the current directory)",
			ArgsUsage: "[DIR]",
			Flags:     []cli.Flag{jsonFlag, nameFlag, &cli.BoolFlag{Name: "nested", Usage: "allow DIR inside another repository's folder (which then commits its files, not its .mesh)"}},
			Action: action(st, func(c *cli.Context) error {
				dir := c.Args().First()
				if dir == "" {
					dir = "."
				}
				name := c.String("name")
				if name != "" && !object.ValidDeviceName(name) {
					return usagef("--name %q: use up to %d letters, digits, '.', '_' and '-', not starting with '.' or '-'", name, object.MaxDeviceNameLen)
				}
				r, err := repo.InitNested(dir, nil, c.Bool("nested"))
				if err != nil {
					return err
				}
				defer r.Close()
				if name != "" {
					if err := r.SetConfig(c.Context, "name", name); err != nil {
						return err
					}
				}
				if st.json {
					return st.printJSON(map[string]any{"root": r.Root, "device": r.Config.Device, "name": r.Config.Name, "mesh": r.Config.Mesh, "chunking": r.Config.Chunking})
				}
				st.printf("Initialized empty mesh repository in %s (a new mesh; add devices with mesh invite)\n", r.Meta)
				return nil
			}),
		},
		{
			Name:      "config",
			Usage:     "show or change this device's settings: name (the device's name), user.name and user.email (the author of its commits)",
			ArgsUsage: "[KEY [VALUE]]",
			Description: "mesh config lists every setting; mesh config KEY prints one; mesh config KEY VALUE sets it;\n" +
				"mesh config --unset KEY removes it. $MESH_AUTHOR (\"Name <email>\"), when set, is the author\n" +
				"instead of user.name and user.email.",
			Flags: []cli.Flag{jsonFlag, &cli.BoolFlag{Name: "unset", Usage: "remove KEY's setting"}},
			Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
				key, value := c.Args().Get(0), c.Args().Get(1)
				switch {
				case c.Bool("unset"):
					if key == "" || c.NArg() > 1 {
						return usagef("config --unset takes one KEY")
					}
					return r.SetConfig(c.Context, key, "")
				case c.NArg() == 2:
					if value == "" {
						return usagef("config %s \"\": give a value, or --unset %s", key, key)
					}
					return r.SetConfig(c.Context, key, value)
				}
				vals := r.ConfigValues()
				if key != "" {
					v, ok := vals[key]
					if !ok {
						return r.SetConfig(c.Context, key, "") // names the keys it knows
					}
					if st.json {
						return st.printJSON(map[string]string{key: v})
					}
					if v == "" {
						return fmt.Errorf("%s is not set (see mesh config)", key)
					}
					st.printf("%s\n", v)
					return nil
				}
				if st.json {
					return st.printJSON(vals)
				}
				about := repo.ConfigKeys()
				for _, k := range sortedKeys(vals) {
					v := vals[k]
					if v == "" {
						v = "(not set)"
					}
					st.printf("%s=%s\t# %s\n", k, v, about[k])
				}
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
					fmt.Fprintf(st.stderr, "mesh: %s/ is a repository of its own: its files are committed here, its .mesh is not\n", quote(p))
				}
				for _, p := range s.Reserved {
					fmt.Fprintf(st.stderr, "mesh: %s is left out: a file or folder named .mesh (in any case) cannot be committed; rename it, or add it to .meshignore\n", quote(p))
				}
				if c.Bool("short") {
					for _, k := range s.Conflicts {
						st.printf("C %s\n", quote(k.Path))
					}
					for _, ch := range s.Changes {
						st.printf("%s %s\n", statusLetter(ch.Status), quote(ch.Path))
					}
					return nil
				}
				if s.Branch != "" {
					st.printf("On branch %s\n", s.Branch)
				} else {
					st.printf("HEAD detached at %s\n", s.Head.Short())
				}
				if s.Head.IsZero() {
					st.printf("No commits yet\n")
				}
				if s.Interrupted != "" {
					st.printf("\nAn update of the folder (%s) is in progress in another mesh process, or was interrupted;\nthe next command that can take the lock finishes it.\n", s.Interrupted)
				}
				if len(s.Conflicts) > 0 {
					st.printf("\nOpen conflicts (mesh conflicts lists them; edit, then mesh resolve PATH):\n")
					for _, k := range s.Conflicts {
						st.printf("\t%s\n", conflictLine(k))
					}
				}
				if len(s.Kept) > 0 {
					st.printf("\nKept under other names (this folder cannot hold theirs; a commit keeps history's names):\n")
					for _, k := range s.Kept {
						st.printf("\t%s\n", keptLine(k))
					}
				}
				if s.Clean() {
					if len(s.Conflicts) > 0 {
						st.printf("\nnothing to commit, working tree clean, but %d conflict(s) open\n", len(s.Conflicts))
					} else {
						st.printf("nothing to commit, working tree clean\n")
					}
					return nil
				}
				st.printf("\nChanges (mesh commit -m MSG takes them all):\n")
				for _, ch := range s.Changes {
					st.printf("%s %s\n", statusLetter(ch.Status), quote(ch.Path))
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
