package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// docCommands are mesh completion and mesh man: both are generated from
// the command definitions, so they cannot fall behind them.
func docCommands(st *state, app *cli.App) []*cli.Command {
	return []*cli.Command{
		{
			Name:      "completion",
			Usage:     "print a shell completion script: bash, zsh or fish (e.g. mesh completion bash > /etc/bash_completion.d/mesh)",
			ArgsUsage: "SHELL",
			Action: action(st, func(c *cli.Context) error {
				switch sh := c.Args().First(); sh {
				case "bash":
					writeBash(st.stdout, app)
				case "zsh":
					fmt.Fprint(st.stdout, "#compdef mesh\n# mesh completion for zsh, through bash's (bashcompinit).\nautoload -U +X bashcompinit && bashcompinit\n")
					writeBash(st.stdout, app)
				case "fish":
					writeFish(st.stdout, app)
				default:
					return usagef("completion takes bash, zsh or fish, not %q", sh)
				}
				return nil
			}),
		},
		{
			Name:  "man",
			Usage: "print mesh's manual page (roff), e.g. mesh man > /usr/local/share/man/man1/mesh.1",
			Action: action(st, func(c *cli.Context) error {
				writeMan(st.stdout, app)
				return nil
			}),
		},
	}
}

// writeMan writes mesh's manual page in roff (man(7)) from the command
// definitions. mesh writes it itself rather than through urfave/cli's
// markdown-to-roff generator so that the binary need not link (and
// initialize, on every command) a markdown library: release builds use
// the urfave_cli_no_docs tag.
func writeMan(w io.Writer, app *cli.App) {
	fmt.Fprintf(w, ".TH MESH 1 \"\" \"mesh %s\" \"User Commands\"\n.SH NAME\nmesh \\- %s\n", roff(app.Version), roff(app.Usage))
	fmt.Fprint(w, ".SH SYNOPSIS\n.B mesh\n[\\fB\\-C\\fR \\fIDIR\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]\n")
	if app.Description != "" {
		fmt.Fprintf(w, ".SH DESCRIPTION\n%s\n", roffText(app.Description))
	}
	fmt.Fprint(w, ".SH GLOBAL OPTIONS\n")
	manFlags(w, app.Flags)
	fmt.Fprint(w, ".SH COMMANDS\n")
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			path := strings.TrimSpace(prefix + " " + c.Name)
			fmt.Fprintf(w, ".SS \"mesh %s\"\n", roff(path))
			if c.ArgsUsage != "" {
				fmt.Fprintf(w, ".B mesh %s\n%s\n.PP\n", roff(path), roff(c.ArgsUsage))
			}
			if len(c.Aliases) > 0 {
				fmt.Fprintf(w, "Also: %s.\n.PP\n", roff(strings.Join(c.Aliases, ", ")))
			}
			fmt.Fprintf(w, "%s\n", roffText(c.Usage))
			if c.Description != "" {
				fmt.Fprintf(w, ".PP\n%s\n", roffText(c.Description))
			}
			manFlags(w, c.Flags)
			walk(path, c.Subcommands)
		}
	}
	walk("", app.Commands)
}

// manFlags lists flags as a roff tagged paragraph each: names, value
// placeholder, usage and default.
func manFlags(w io.Writer, flags []cli.Flag) {
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		var names []string
		for _, n := range f.Names() {
			dash := "\\-\\-"
			if len(n) == 1 {
				dash = "\\-"
			}
			names = append(names, "\\fB"+dash+roff(n)+"\\fR")
		}
		head, usage := strings.Join(names, ", "), ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			placeholder, u := usagePlaceholder(d.GetUsage())
			usage = u
			if d.TakesValue() {
				head += " \\fI" + roff(placeholder) + "\\fR"
				if def := d.GetDefaultText(); def != "" {
					usage += " (default: " + def + ")"
				} else if v := d.GetValue(); v != "" && v != `""` {
					usage += " (default: " + v + ")"
				}
			}
		}
		fmt.Fprintf(w, ".TP\n%s\n%s\n", head, roffText(usage))
	}
}

// usagePlaceholder splits a flag's usage as urfave/cli's help does: a
// `WORD` in backquotes names the flag's value (and loses its quotes);
// without one the value is VALUE.
func usagePlaceholder(usage string) (string, string) {
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			name := usage[i+1 : i+1+j]
			return name, usage[:i] + name + usage[i+2+j:]
		}
	}
	return "VALUE", usage
}

// roff escapes text for use inside a roff line: backslashes and
// hyphens (which roff would otherwise typeset as hyphenation points).
func roff(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`, "\n", " ").Replace(s)
}

// roffText escapes a paragraph: roff() for each line, and a line that
// starts with a period or quote is guarded so roff does not read it as
// a request.
func roffText(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		l = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(l)
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// cmdNode is a command for completion: its path ("remote add"), words
// that may follow it (subcommands, flags), and whether it takes
// arguments (then file names complete too).
type cmdNode struct {
	path  string
	subs  []string
	flags []string
	args  bool
	about string
}

func completionTree(app *cli.App) []cmdNode {
	var out []cmdNode
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			n := cmdNode{path: strings.TrimSpace(prefix + " " + c.Name), args: c.ArgsUsage != "", about: c.Usage}
			for _, s := range c.Subcommands {
				if !s.Hidden {
					n.subs = append(n.subs, s.Name)
				}
			}
			for _, f := range c.Flags {
				if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
					continue
				}
				for _, name := range f.Names() {
					if len(name) == 1 {
						n.flags = append(n.flags, "-"+name)
					} else {
						n.flags = append(n.flags, "--"+name)
					}
				}
			}
			n.flags = append(n.flags, "--help")
			sort.Strings(n.flags)
			out = append(out, n)
			walk(n.path, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return out
}

func writeBash(w io.Writer, app *cli.App) {
	tree := completionTree(app)
	var top []string
	for _, n := range tree {
		if !strings.Contains(n.path, " ") {
			top = append(top, n.path)
		}
	}
	fmt.Fprintf(w, `# mesh completion for bash (generated by mesh completion bash).
_mesh() {
    local cur=${COMP_WORDS[COMP_CWORD]} path="" w i words="" files=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case "$w" in
        -C) ((i++)); continue ;;
        -*) continue ;;
        esac
        case "${path:+$path }$w" in
`)
	for _, n := range tree {
		fmt.Fprintf(w, "        %q) path=%q ;;\n", n.path, n.path)
	}
	fmt.Fprintf(w, `        esac
    done
    case "$path" in
    "") words=%q ;;
`, strings.Join(append(top, "-C", "--help", "--version"), " "))
	for _, n := range tree {
		files := 0
		if n.args {
			files = 1
		}
		fmt.Fprintf(w, "    %q) words=%q files=%d ;;\n", n.path, strings.Join(append(append([]string(nil), n.subs...), n.flags...), " "), files)
	}
	fmt.Fprint(w, `    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if [[ $files == 1 && $cur != -* ]]; then
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -F _mesh mesh
`)
}

func writeFish(w io.Writer, app *cli.App) {
	fmt.Fprint(w, "# mesh completion for fish (generated by mesh completion fish).\ncomplete -c mesh -f\n")
	fmt.Fprint(w, "complete -c mesh -s C -r -d 'run as if mesh was started in DIR'\ncomplete -c mesh -l version -d 'print the version'\n")
	for _, n := range completionTree(app) {
		words := strings.Fields(n.path)
		about := strings.ReplaceAll(n.about, "'", `\'`)
		if len(words) == 1 {
			fmt.Fprintf(w, "complete -c mesh -n '__fish_use_subcommand' -a %s -d '%s'\n", words[0], about)
		} else {
			parent := words[len(words)-2]
			fmt.Fprintf(w, "complete -c mesh -n '__fish_seen_subcommand_from %s' -a %s -d '%s'\n", parent, words[len(words)-1], about)
		}
		cond := "__fish_seen_subcommand_from " + words[len(words)-1]
		for _, f := range n.flags {
			if long, ok := strings.CutPrefix(f, "--"); ok {
				fmt.Fprintf(w, "complete -c mesh -n '%s' -l %s\n", cond, long)
			} else {
				fmt.Fprintf(w, "complete -c mesh -n '%s' -s %s\n", cond, strings.TrimPrefix(f, "-"))
			}
		}
		if n.args {
			fmt.Fprintf(w, "complete -c mesh -n '%s' -F\n", cond)
		}
	}
}
