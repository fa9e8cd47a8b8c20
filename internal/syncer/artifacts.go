package syncer

import (
	"context"
	"path"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Artifact branches (mesh publish) travel beside the synced branch: a
// daemon announces each of its artifacts/* tips over gossip, so every
// device learns which devices hold which version, and a source asked for
// a version names them all to the swarm (knownHolders). A daemon given
// patterns (mesh daemon --artifacts 'artifacts/*') also mirrors the
// matching branches: a newer version announced anywhere is fetched with
// the swarm, the branch moved, and the version announced again, so the
// next device fetches from one more holder.

// announceArtifacts announces every artifact branch tip not announced yet.
func (s *Session) announceArtifacts() {
	refs, err := s.Repo.Refs.List()
	if err != nil {
		s.Log.Warn("Listing the artifact branches", "error", err)
		return
	}
	s.artMu.Lock()
	defer s.artMu.Unlock()
	if s.artAnnounced == nil {
		s.artAnnounced = map[string]object.ID{}
	}
	for name, id := range refs {
		branch, ok := strings.CutPrefix(name, "heads/")
		if !ok || !strings.HasPrefix(branch, repo.ArtifactPrefix) || s.artAnnounced[branch] == id {
			continue
		}
		if err := s.Node.Announce(branch, id); err != nil {
			s.Log.Warn("Announce failed", "branch", branch, "error", err)
			continue
		}
		s.artAnnounced[branch] = id
	}
}

// mirrors reports whether branch matches one of the --artifacts patterns.
func (s *Session) mirrors(branch string) bool {
	for _, p := range s.opts.Artifacts {
		if ok, _ := path.Match(p, branch); ok {
			return true
		}
	}
	return false
}

// maxPassed bounds the versions remembered as older than a branch's tip.
const maxPassed = 4096

// mirrorArtifacts brings every mirrored artifact branch to the newest
// version announced, one fetch at a time. It returns the branches moved.
func (s *Session) mirrorArtifacts(ctx context.Context) []string {
	if len(s.opts.Artifacts) == 0 {
		return nil
	}
	// Per branch, the announced versions and who announced each, newest
	// announcement first.
	heads := s.Node.Heads()
	sort.SliceStable(heads, func(i, j int) bool { return heads[i].Seq > heads[j].Seq })
	type version struct {
		branch string
		commit object.ID
		from   []gossip.Head
	}
	var order []*version
	byKey := map[string]*version{}
	for _, hd := range heads {
		if hd.Device == s.Me || hd.Addr == "" || !strings.HasPrefix(hd.Branch, repo.ArtifactPrefix) || !s.mirrors(hd.Branch) {
			continue
		}
		k := hd.Branch + " " + hd.Commit.String()
		v := byKey[k]
		if v == nil {
			v = &version{branch: hd.Branch, commit: hd.Commit}
			byKey[k] = v
			order = append(order, v)
		}
		v.from = append(v.from, hd)
	}
	var moved []string
	for _, v := range order {
		s.artMu.Lock()
		passed := s.passed[v.commit]
		s.artMu.Unlock()
		tip, _, err := s.Repo.Refs.Get(object.BranchRef(v.branch))
		if err != nil || passed || tip == v.commit {
			continue
		}
		for _, hd := range v.from {
			if ctx.Err() != nil {
				return moved
			}
			dev, err := remote.ParseDeviceID(hd.Device)
			if err != nil {
				continue
			}
			res, err := s.Repo.FetchArtifact(ctx, hd.Addr, dev, v.branch, v.commit, s.fetchAddr, s.Log)
			if err != nil {
				s.Log.Warn("Mirroring an artifact failed", "branch", v.branch, "commit", v.commit.String(), "device", hd.Device, "error", err)
				continue
			}
			if res.Moved {
				s.Log.Info("Mirrored", "branch", v.branch, "commit", v.commit.String(), "bytes", res.Fetched.Bytes, "from", res.Received)
				moved = append(moved, v.branch)
			} else {
				s.artMu.Lock()
				if len(s.passed) >= maxPassed {
					clear(s.passed)
				}
				s.passed[v.commit] = true
				s.artMu.Unlock()
			}
			break
		}
	}
	if len(moved) > 0 {
		s.announceArtifacts()
	}
	return moved
}

// artifacts announces this device's artifact branches and, in the
// background (a large artifact must not hold up the folder's sync),
// mirrors the ones --artifacts selects.
func (s *Session) artifacts(ctx context.Context) {
	s.announceArtifacts()
	if len(s.opts.Artifacts) == 0 || !s.mirroring.CompareAndSwap(false, true) {
		return
	}
	mctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel) // Close ends it too
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer s.mirroring.Store(false)
		defer stop()
		defer cancel()
		s.mirrorArtifacts(mctx)
	}()
}

// knownHolders lists the devices whose gossip says they hold commit
// whole (their announced head is it), for the tracker of this device's
// server.
func (s *Session) knownHolders(commit object.ID) []remote.Holder {
	n := s.node.Load()
	if n == nil {
		return nil
	}
	var out []remote.Holder
	for _, hd := range n.Heads() {
		if hd.Commit == commit && hd.Device != s.Me && hd.Addr != "" {
			out = append(out, remote.Holder{Device: hd.Device, Addr: hd.Addr, Complete: true})
		}
	}
	return out
}
