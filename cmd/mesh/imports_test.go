package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules checks the one-way imports the README's Design section
// states: object imports no mesh package; gossip, remote and merge import
// only object; nothing below cmd imports cmd.
func TestImportRules(t *testing.T) {
	list := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/mesh-sync/mesh/...")
	list.Dir = repoRoot
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/mesh-sync/mesh/"
	allowed := map[string][]string{
		"object": {},
		"gossip": {"object"},
		"remote": {"object"},
		"merge":  {"object"},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if strings.HasPrefix(dep, "cmd/") && !strings.HasPrefix(pkg, "cmd/") {
				t.Errorf("%s imports %s: nothing below cmd may", pkg, dep)
			}
			if want, ok := allowed[pkg]; ok {
				checked++
				permitted := false
				for _, w := range want {
					permitted = permitted || dep == w
				}
				if !permitted {
					t.Errorf("%s imports %s; it may import only %v", pkg, dep, want)
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked only %d imports; go list said:\n%s", checked, out)
	}
}
