package repo

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

// clashes makes device i (0, 1, 2) change the same things differently:
// line 4 of t.txt (modify/modify), one line each of adj.txt next to the
// others' (adjacent lines), bin.dat (binary), new.txt that base lacks
// (add/add), and fd as a file on two devices and a directory on one.
func clashes(t *testing.T, r *Repo, i int) {
	t.Helper()
	who := []string{"alpha", "bravo", "charlie"}[i]
	lines := strings.Split("1\n2\n3\n4\n5\n6\n7\n8\n", "\n")
	lines[3] = "4 by " + who
	write(t, r, "t.txt", strings.Join(lines, "\n"))
	adj := strings.Split("a\nb\nc\nd\ne\nf\ng\n", "\n")
	adj[2+i] = strings.ToUpper(adj[2+i]) + " by " + who
	write(t, r, "adj.txt", strings.Join(adj, "\n"))
	write(t, r, "bin.dat", "\x00binary\x00"+who)
	write(t, r, "new.txt", "new on "+who+"\n")
	if i == 1 {
		write(t, r, "fd/inside.txt", "a directory on "+who+"\n")
	} else {
		write(t, r, "fd", "a file on "+who+"\n")
	}
	commit(t, r, "clash from "+who)
}

// pullFrom brings y's head into x as mesh pull does: fetch, then merge.
func pullFrom(t *testing.T, x, y *Repo) {
	t.Helper()
	if _, err := x.Fetch(ctx, y.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Merge(ctx, "remotes/"+remoteName(y.Root)+"/main", MergeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// convergeAll has every device fetch every other and converge on all
// heads, as daemons do; it returns the head they all end on.
func convergeAll(t *testing.T, repos []*Repo) object.ID {
	t.Helper()
	var heads []object.ID
	for _, x := range repos {
		h, err := x.Head()
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h.ID)
	}
	var end []object.ID
	for _, x := range repos {
		end = append(end, fetchAndConverge(t, x, repos, heads))
	}
	for _, e := range end[1:] {
		if e != end[0] {
			t.Fatalf("devices ended on different heads: %v", end)
		}
	}
	return end[0]
}

// fetchAndConverge has x fetch every other repository and converge on
// heads, as a daemon's round does; it returns x's new head.
func fetchAndConverge(t *testing.T, x *Repo, repos []*Repo, heads []object.ID) object.ID {
	t.Helper()
	for _, y := range repos {
		if x != y {
			if _, err := x.Fetch(ctx, y.Root); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := x.Converge(ctx, heads, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// copiesIn lists the conflict copies in a working tree.
func copiesIn(t *testing.T, r *Repo) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(r.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.Name() == ".mesh" {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), ".conflict-") {
			rel, _ := filepath.Rel(r.Root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func conflictKeys(cs []OpenConflict) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Path+" "+c.Copy+" "+c.Merge.Short()+" "+c.Device+" "+c.DeviceName)
	}
	slices.Sort(out)
	return out
}

// TestThreeDeviceConflicts: three devices clash on one path in every form
// and merge in different orders. Every device then lists the same
// conflicts; every copy in the tree is listed, once per content, and named
// after a real device (never "unknown", also when the side merged was a
// merge); resolving each path on one device ends all of them everywhere.
func TestThreeDeviceConflicts(t *testing.T) {
	orders := map[string][][2]int{
		"a takes b then c":     {{0, 1}, {0, 2}},
		"c takes b, b takes a": {{2, 1}, {1, 0}, {0, 2}},
		"a chain":              {{1, 0}, {2, 1}, {0, 2}, {1, 2}},
		"all at once":          nil,
	}
	for name, steps := range orders {
		t.Run(name, func(t *testing.T) {
			a := newRepo(t)
			write(t, a, "t.txt", "1\n2\n3\n4\n5\n6\n7\n8\n")
			write(t, a, "adj.txt", "a\nb\nc\nd\ne\nf\ng\n")
			write(t, a, "bin.dat", "\x00binary\x00")
			commit(t, a, "base")
			repos := []*Repo{a, joined(t, a), joined(t, a)}
			for _, x := range repos[1:] {
				pullFrom(t, x, a)
			}
			devices := map[string]string{}
			for i, x := range repos {
				n := []string{"alpha", "bravo", "charlie"}[i]
				if err := x.SetConfig(ctx, "name", n); err != nil {
					t.Fatal(err)
				}
				devices[x.Config.Device] = n
			}
			for i, x := range repos {
				clashes(t, x, i)
			}
			for _, s := range steps {
				pullFrom(t, repos[s[0]], repos[s[1]])
			}
			convergeAll(t, repos)

			var first []string
			for i, x := range repos {
				open, err := x.Conflicts()
				if err != nil {
					t.Fatal(err)
				}
				keys := conflictKeys(open)
				if i == 0 {
					first = keys
				} else if !slices.Equal(keys, first) {
					t.Fatalf("device %d lists\n%s\ndevice 0 lists\n%s", i, strings.Join(keys, "\n"), strings.Join(first, "\n"))
				}
				var listed []string
				perPath := map[string]int{}
				for _, c := range open {
					if devices[c.Device] == "" || c.DeviceName != devices[c.Device] || c.Commit.IsZero() {
						t.Errorf("conflict %s names device %q (%q), commit %s: not one of the three", c.Path, c.Device, c.DeviceName, c.Commit.Short())
					}
					if strings.Contains(c.Copy, "unknown") {
						t.Errorf("copy %s is not named after a device", c.Copy)
					}
					if c.Copy != "" {
						listed = append(listed, c.Copy)
					}
					perPath[c.Path]++
				}
				slices.Sort(listed)
				listed = slices.Compact(listed)
				if got := copiesIn(t, x); !slices.Equal(got, listed) {
					t.Fatalf("device %d: the tree holds copies\n%s\nmesh conflicts lists\n%s", i, strings.Join(got, "\n"), strings.Join(listed, "\n"))
				}
				// Three versions of each clash: one at the path, two kept.
				for _, p := range []string{"t.txt", "bin.dat", "new.txt", "fd"} {
					if perPath[p] != 2 {
						t.Errorf("device %d: %d conflicts at %s, want 2:\n%s", i, perPath[p], p, strings.Join(keys, "\n"))
					}
				}
				if perPath["adj.txt"] == 0 {
					t.Errorf("device %d: the adjacent-line edits made no conflict", i)
				}
				// Each version is kept once.
				seen := map[string]string{}
				for _, c := range listed {
					b, err := os.ReadFile(filepath.Join(x.Root, c))
					if err != nil {
						continue // a directory copy
					}
					if o, dup := seen[string(b)]; dup {
						t.Errorf("device %d: %s and %s hold the same version", i, o, c)
					}
					seen[string(b)] = c
				}
			}

			// Resolve everything on one device, removing the copies.
			open, _ := repos[1].Conflicts()
			var paths []string
			for _, c := range open {
				paths = append(paths, c.Path)
			}
			slices.Sort(paths)
			for _, p := range slices.Compact(paths) {
				res, err := repos[1].ResolveConflict(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				if res.Ended == 0 {
					t.Fatalf("resolve %s ended nothing", p)
				}
			}
			convergeAll(t, repos)
			for i, x := range repos {
				if open, _ := x.Conflicts(); len(open) != 0 {
					t.Errorf("device %d still lists %s", i, strings.Join(conflictKeys(open), "\n"))
				}
				if got := copiesIn(t, x); len(got) != 0 {
					t.Errorf("device %d still holds copies %v", i, got)
				}
			}
		})
	}
}

// TestThreeDeviceRenameEdit: one device renames a file (editing it too),
// two others edit it elsewhere; in every merge order the edits all land in
// the renamed file, with no conflict and no file left at the old name.
func TestThreeDeviceRenameEdit(t *testing.T) {
	var text []string
	for i := 0; i < 24; i++ {
		text = append(text, fmt.Sprintf("line %d", i))
	}
	base := strings.Join(text, "\n") + "\n"
	edit := func(n int, by string) string {
		ls := slices.Clone(text)
		ls[n] += " by " + by
		return strings.Join(ls, "\n") + "\n"
	}
	want := func(moverEdits bool) string {
		ls := slices.Clone(text)
		if moverEdits {
			ls[1] += " by alpha"
		}
		ls[10] += " by bravo"
		ls[18] += " by charlie"
		return strings.Join(ls, "\n") + "\n"
	}
	orders := map[string][][2]int{
		"a takes b then c": {{0, 1}, {0, 2}},
		"c takes b first":  {{2, 1}, {1, 0}, {0, 2}},
		"b takes c first":  {{1, 2}, {2, 0}},
		"all at once":      nil,
	}
	for name, steps := range orders {
		for _, moverEdits := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, mover edits %v", name, moverEdits), func(t *testing.T) {
				a := newRepo(t)
				write(t, a, "docs/f.txt", base)
				commit(t, a, "base")
				repos := []*Repo{a, joined(t, a), joined(t, a)}
				for _, x := range repos[1:] {
					pullFrom(t, x, a)
				}
				if err := os.Remove(filepath.Join(a.Root, "docs", "f.txt")); err != nil {
					t.Fatal(err)
				}
				moved := base
				if moverEdits {
					moved = edit(1, "alpha")
				}
				write(t, a, "notes/g.txt", moved)
				commit(t, a, "move f to g")
				write(t, repos[1], "docs/f.txt", edit(10, "bravo"))
				commit(t, repos[1], "edit")
				write(t, repos[2], "docs/f.txt", edit(18, "charlie"))
				commit(t, repos[2], "edit")
				for _, s := range steps {
					pullFrom(t, repos[s[0]], repos[s[1]])
				}
				convergeAll(t, repos)
				for i, x := range repos {
					if got := read(t, x, "notes/g.txt"); got != want(moverEdits) {
						t.Errorf("device %d: g.txt is\n%s", i, got)
					}
					if _, err := os.Stat(filepath.Join(x.Root, "docs", "f.txt")); err == nil {
						t.Errorf("device %d: the old name is still there", i)
					}
					if open, _ := x.Conflicts(); len(open) != 0 {
						t.Errorf("device %d: conflicts %s", i, strings.Join(conflictKeys(open), "\n"))
					}
				}
			})
		}
	}
}
