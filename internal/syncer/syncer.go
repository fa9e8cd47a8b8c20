package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/mesh-sync/mesh/gossip"
	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Syncer runs sync rounds for one repository.
type Syncer struct {
	Repo *repo.Repo
	Node *gossip.Node
	Log  *slog.Logger
	// Me is this device's ID.
	Me string

	announced object.ID // the head last announced
}

// announce tells the mesh about head, once per head: announcing the same
// head again would make every device run a round for nothing.
func (s *Syncer) announce(log *slog.Logger, branch string, head object.ID) {
	if head.IsZero() || head == s.announced {
		return
	}
	if err := s.Node.Announce(branch, head); err != nil {
		log.Warn("Announce failed", "error", err)
		return
	}
	s.announced = head
}

// Round says what one round did.
type Round struct {
	Committed object.ID            `json:"committed,omitempty"`
	Fetched   []string             `json:"fetched,omitempty"` // devices fetched from
	Merged    *repo.MergeResult    `json:"merged,omitempty"`
	Head      object.ID            `json:"head"`
	Missing   map[string]string    `json:"missing,omitempty"` // device → why its head is not here
	Heads     map[string]object.ID `json:"heads"`             // device → head heard of
}

// Done reports whether HEAD now contains every head heard of: all were
// fetched, and Converge merged every one it was given.
func (r *Round) Done() bool { return len(r.Missing) == 0 && r.Merged != nil }

// Once runs one round.
func (s *Syncer) Once(ctx context.Context) (*Round, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := s.Repo.Head()
	if err != nil {
		return nil, err
	}
	if h.Branch == "" {
		return nil, errors.New("HEAD is detached: sync keeps a branch in step; check one out")
	}
	branch := h.Branch
	out := &Round{Missing: map[string]string{}, Heads: map[string]object.ID{}}

	// 1. Local changes become a commit, so nothing being edited is
	// overwritten by what comes in.
	commit := true
	if h.ID.IsZero() {
		// A new device with an empty folder has nothing to say yet; an
		// empty root commit would only clutter everyone's history.
		st, err := s.Repo.Status(ctx)
		if err != nil {
			return nil, err
		}
		commit = len(st.Changes) > 0
	}
	var cr *repo.CommitResult
	if commit {
		if cr, err = s.Repo.Commit(ctx, repo.CommitOptions{Message: "sync"}); err != nil {
			return nil, err
		}
	}
	if cr != nil && cr.Created {
		out.Committed = cr.ID
		log.Info("Committed local changes", "commit", cr.ID.String())
	}
	if h, err = s.Repo.Head(); err != nil {
		return nil, err
	}
	s.announce(log, branch, h.ID)

	// 2. Fetch what others announced, from the announcer or from anyone
	// announcing the same commit.
	heads := s.Node.Heads()
	byCommit := map[object.ID][]gossip.Head{}
	for _, hd := range heads {
		if hd.Branch == branch {
			byCommit[hd.Commit] = append(byCommit[hd.Commit], hd)
		}
	}
	for _, hd := range heads {
		if hd.Device == s.Me || hd.Branch != branch {
			continue
		}
		out.Heads[hd.Device] = hd.Commit
		sources := append([]gossip.Head{hd}, byCommit[hd.Commit]...)
		var last error
		for _, src := range sources {
			if src.Device == s.Me || src.Addr == "" {
				continue
			}
			dev, err := remote.ParseDeviceID(src.Device)
			if err != nil {
				last = err
				continue
			}
			owner, _ := remote.ParseDeviceID(hd.Device)
			st, err := s.Repo.FetchDevice(ctx, src.Addr, dev, owner, branch, hd.Commit)
			if err != nil {
				log.Warn("Fetch failed", "device", src.Device, "addr", src.Addr, "commit", hd.Commit.String(), "error", err)
				last = err
				continue
			}
			if st.Objects > 0 {
				out.Fetched = append(out.Fetched, src.Device)
				log.Info("Fetched", "device", src.Device, "commit", hd.Commit.String(), "objects", st.Objects, "bytes", st.Bytes)
			}
			last = nil
			break
		}
		if last != nil || !s.Repo.Store.Has(hd.Commit) {
			out.Missing[hd.Device] = fmt.Sprint(last)
		}
	}

	// 3. Converge on every device head we hold.
	var want []object.ID
	for dev, c := range out.Heads {
		if _, missing := out.Missing[dev]; !missing {
			want = append(want, c)
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].String() < want[j].String() })
	res, err := s.Repo.Converge(ctx, want, repo.MergeOptions{})
	if err != nil {
		return out, err
	}
	out.Merged = res
	out.Head = res.ID
	if !res.UpToDate {
		log.Info("Converged", "head", res.ID.String(), "conflicts", len(res.Conflicts))
	}
	s.announce(log, branch, res.ID)
	return out, nil
}
