package ignore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, FileName), []byte("# comment\n*.log\nbuild/\n!keep.log\nlogs/\n!logs/sub/\n/top.txt\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "sub", FileName), []byte("*.tmp\n!important.log\n"), 0o644)
	rootRules, err := (*Rules)(nil).Enter(root, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	subRules, err := rootRules.Enter(filepath.Join(root, "sub"), []string{"sub"}, true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		r       *Rules
		path    string
		dir     bool
		ignored bool
	}{
		{rootRules, ".mesh", true, true},
		{rootRules, "nested/.mesh", true, true},
		{rootRules, ".MESH", false, true},
		{rootRules, "a.log", false, true},
		{rootRules, "keep.log", false, false},
		{rootRules, "a.txt", false, false},
		{rootRules, "build", true, true},
		{rootRules, "build", false, false}, // "build/" only matches directories
		{rootRules, "logs", true, true},
		{rootRules, "top.txt", false, true},
		{subRules, "sub/top.txt", false, false}, // anchored to the root
		{subRules, "sub/x.tmp", false, true},
		{subRules, "sub/important.log", false, false},
		{subRules, "sub/other.log", false, true},
		{rootRules, "x.tmp", false, false}, // sub's rules stay in sub
	}
	for _, c := range cases {
		if got := c.r.Ignored(strings.Split(c.path, "/"), c.dir); got != c.ignored {
			t.Errorf("Ignored(%s, dir=%v) = %v, want %v", c.path, c.dir, got, c.ignored)
		}
	}
	if !rootRules.Active() || (*Rules)(nil).Active() {
		t.Error("Active wrong")
	}
}
