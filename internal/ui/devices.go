package ui

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/syncer"
	"github.com/mesh-sync/mesh/object"
)

// Device is another device of the mesh as this one last saw it (a sync
// round or the daemon keeps .mesh/peers.json).
type Device struct {
	Device      string           `json:"device"`
	GossipAddr  string           `json:"gossipAddr,omitempty"`
	FetchAddr   string           `json:"fetchAddr,omitempty"`
	Alive       bool             `json:"alive"`
	LastContact time.Time        `json:"lastContact,omitzero"`
	Heads       []DeviceHead     `json:"heads"`
	Refused     []syncer.Refusal `json:"refused,omitempty"`
}

// DeviceHead is a branch head a device announced.
type DeviceHead struct {
	Branch string    `json:"branch"`
	Commit object.ID `json:"commit"`
	Seq    uint64    `json:"seq"`
}

// Artifact is an artifact branch: its tip and how many versions its
// reflog keeps.
type Artifact struct {
	Branch   string    `json:"branch"`
	Tip      object.ID `json:"tip"`
	Versions int       `json:"versions"`
}

// Devices is the devices page: this device, the others, and the
// artifact branches it holds.
type Devices struct {
	Me        string     `json:"me"`
	Name      string     `json:"name"`
	Head      object.ID  `json:"head,omitzero"`
	Daemon    bool       `json:"daemon"` // a daemon or sync serves this repository now
	Devices   []Device   `json:"devices"`
	Artifacts []Artifact `json:"artifacts"`
}

func (s *Server) devices(r *http.Request) (any, error) {
	d := Devices{Me: s.repo.Config.Device, Name: s.repo.Config.Name, Devices: []Device{}, Artifacts: []Artifact{}}
	if h, err := s.repo.Head(); err == nil {
		d.Head = h.ID
	}
	// serve.addr exists while mesh serve, sync or a daemon serves here.
	_, err := os.Stat(filepath.Join(s.repo.Meta, repo.ServeAddrFile))
	d.Daemon = s.inDaemon || err == nil
	refused := map[string][]syncer.Refusal{}
	for _, rf := range syncer.LoadRefused(s.repo.Meta) {
		refused[rf.Device] = append(refused[rf.Device], rf)
	}
	for _, p := range syncer.LoadPeers(s.repo.Meta) {
		dev := Device{Device: p.Device, GossipAddr: p.GossipAddr, FetchAddr: p.FetchAddr, Alive: p.Alive, LastContact: p.LastContact,
			Heads: []DeviceHead{}, Refused: refused[p.Device]}
		for _, h := range p.Heads {
			dev.Heads = append(dev.Heads, DeviceHead{Branch: h.Branch, Commit: h.Commit, Seq: h.Seq})
		}
		delete(refused, p.Device)
		d.Devices = append(d.Devices, dev)
	}
	for dev, rs := range refused {
		d.Devices = append(d.Devices, Device{Device: dev, Heads: []DeviceHead{}, Refused: rs})
	}
	sort.Slice(d.Devices, func(i, j int) bool { return d.Devices[i].Device < d.Devices[j].Device })
	refs, err := s.repo.Refs.List()
	if err != nil {
		return nil, err
	}
	for name, id := range refs {
		b, ok := strings.CutPrefix(name, "heads/")
		if !ok || !strings.HasPrefix(b, repo.ArtifactPrefix) {
			continue
		}
		a := Artifact{Branch: b, Tip: id}
		if log, err := s.repo.Refs.Log(name); err == nil {
			seen := map[object.ID]bool{}
			for _, e := range log {
				if !e.New.IsZero() && !seen[e.New] {
					seen[e.New] = true
				}
			}
			a.Versions = len(seen)
		}
		d.Artifacts = append(d.Artifacts, a)
	}
	sort.Slice(d.Artifacts, func(i, j int) bool { return d.Artifacts[i].Branch < d.Artifacts[j].Branch })
	return d, nil
}
