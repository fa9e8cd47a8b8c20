package syncer

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzMemory: whatever .mesh/peers.json, addrs.json and refused.json
// hold (they are this device's own notes, but a disk can damage them),
// loading them gives what parses or nothing, never a panic, and a merge
// of loaded peers stays within its bound.
func FuzzMemory(f *testing.F) {
	dir := f.TempDir()
	f.Add([]byte(`[{"device":"A","gossipAddr":"10.0.0.1:7421","fetchAddr":"10.0.0.1:7420","alive":true,"lastContact":"2026-01-01T00:00:00Z","heads":null}]`))
	f.Add([]byte(`{"listen":":7420","gossip":"0.0.0.0:7421"}`))
	f.Add([]byte(`[{"device":"A","branch":"main","commit":"00","reason":"x"}]`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{PeersFile, AddrsFile, RefusedFile} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ps := LoadPeers(dir)
		LoadAddrs(dir)
		LoadRefused(dir)
		if got := mergePeers(ps, ps); len(got) > maxPeers {
			t.Fatalf("%d peers kept", len(got))
		}
		bindCandidates(LoadAddrs(dir).Gossip, LoadAddrs(dir).Listen, DefaultGossip)
	})
}
