package syncer

import (
	"slices"
	"testing"
	"time"

	"github.com/mesh-sync/mesh/gossip"
)

func TestBindCandidates(t *testing.T) {
	cases := []struct {
		given, remembered, def string
		want                   []string
	}{
		// nothing given: what was bound last time, the default, any port
		{"", "", ":7420", []string{":7420", ":0"}},
		{"", "10.0.0.5:7420", ":7420", []string{"10.0.0.5:7420", ":7420", ":0"}},
		{"", "0.0.0.0:40111", "0.0.0.0:7421", []string{"0.0.0.0:40111", "0.0.0.0:7421", "0.0.0.0:0"}},
		// an explicit port is that or nothing
		{"127.0.0.1:7000", "127.0.0.1:40111", ":7420", []string{"127.0.0.1:7000"}},
		// port 0 keeps the port picked before on the same host
		{"127.0.0.1:0", "127.0.0.1:40111", ":7420", []string{"127.0.0.1:40111", "127.0.0.1:0"}},
		{"127.0.0.1:0", "10.0.0.5:40111", ":7420", []string{"127.0.0.1:0"}},
	}
	for _, c := range cases {
		if got := bindCandidates(c.given, c.remembered, c.def); !slices.Equal(got, c.want) {
			t.Errorf("bindCandidates(%q, %q, %q) = %q, want %q", c.given, c.remembered, c.def, got, c.want)
		}
	}
}

// TestMergePeers: a round that knows no one yet (just started, the others
// down) keeps the remembered devices; what it knows replaces what was
// remembered, keeping addresses it has not learned.
func TestMergePeers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := []gossip.Peer{
		{Device: "A", GossipAddr: "10.0.0.1:7421", FetchAddr: "10.0.0.1:7420", Alive: true, LastContact: t0},
		{Device: "B", GossipAddr: "10.0.0.2:7421", FetchAddr: "10.0.0.2:7420", Alive: true, LastContact: t0},
	}
	got := mergePeers(old, nil)
	if len(got) != 2 || got[0].GossipAddr != "10.0.0.1:7421" || got[0].Alive || got[1].Alive {
		t.Fatalf("remembered peers after an empty round: %+v", got)
	}
	now := []gossip.Peer{{Device: "B", GossipAddr: "10.0.0.9:7421", Alive: true, LastContact: t0.Add(time.Hour)}}
	got = mergePeers(old, now)
	if len(got) != 2 || got[1].GossipAddr != "10.0.0.9:7421" || got[1].FetchAddr != "10.0.0.2:7420" || !got[1].Alive {
		t.Fatalf("merged: %+v", got)
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	t0 := time.Now()
	if got := b.due([]string{"x", "y"}, t0); len(got) != 2 {
		t.Fatalf("new addresses are due: %v", got)
	}
	b.failed("x", t0)
	if got := b.due([]string{"x", "y"}, t0); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("after a failure: %v", got)
	}
	b.failed("x", t0) // second failure: twice the wait
	if got := b.due([]string{"x"}, t0.Add(RetryMin+time.Millisecond)); len(got) != 0 {
		t.Fatalf("the wait did not double: %v", got)
	}
	if got := b.due([]string{"x"}, t0.Add(2*RetryMin)); len(got) != 1 {
		t.Fatalf("not due after twice the wait: %v", got)
	}
	for range 20 {
		b.failed("x", t0)
	}
	if got := b.due([]string{"x"}, t0.Add(RetryMax)); len(got) != 1 {
		t.Fatalf("the wait grew past RetryMax: %v", got)
	}
	b.answered("x")
	if got := b.due([]string{"x"}, t0); len(got) != 1 {
		t.Fatalf("an address that answered is due again: %v", got)
	}
}
