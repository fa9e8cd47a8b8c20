package remote

import (
	"testing"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// TestTrackerHolders: registered devices expire after HolderTTL; the ones
// Known names are listed as complete, once each, never the asker; a device
// registered as fetching that Known says holds it all is listed complete.
func TestTrackerHolders(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := NewTracker()
	tr.now = func() time.Time { return now }
	commit := object.Hash(object.TypeChunk, []byte("c"))
	dev := func(b byte) DeviceID { var d DeviceID; d[0] = b; return d }
	fetching, asker, gossiped := dev(1), dev(2), dev(3)
	tr.register(commit, fetching, "10.0.0.1:1", false)
	tr.register(commit, asker, "10.0.0.2:1", false)

	byDevice := func(hs []Holder) map[string]Holder {
		m := map[string]Holder{}
		for _, h := range hs {
			if _, dup := m[h.Device]; dup {
				t.Fatalf("%s listed twice: %+v", h.Device, hs)
			}
			m[h.Device] = h
		}
		return m
	}
	got := byDevice(tr.holders(commit, asker))
	if len(got) != 1 || got[fetching.String()].Complete {
		t.Fatalf("before any gossip: %+v", got)
	}

	tr.Known = func(c object.ID) []Holder {
		if c != commit {
			return nil
		}
		return []Holder{
			{Device: fetching.String(), Addr: "10.0.0.1:1"},
			{Device: gossiped.String(), Addr: "10.0.0.3:1"},
			{Device: asker.String(), Addr: "10.0.0.2:1"},
			{Device: dev(4).String()}, // no address: cannot be dialed
		}
	}
	got = byDevice(tr.holders(commit, asker))
	if len(got) != 2 || !got[fetching.String()].Complete || !got[gossiped.String()].Complete || got[gossiped.String()].Addr != "10.0.0.3:1" {
		t.Fatalf("with gossip: %+v", got)
	}
	if hs := tr.holders(object.Hash(object.TypeChunk, []byte("other")), asker); len(hs) != 0 {
		t.Fatalf("holders of a commit nobody has: %+v", hs)
	}

	// Registrations lapse after HolderTTL.
	now = now.Add(HolderTTL + time.Second)
	tr.Known = nil
	if hs := tr.holders(commit, DeviceID{}); len(hs) != 0 {
		t.Fatalf("after the TTL: %+v", hs)
	}
}
