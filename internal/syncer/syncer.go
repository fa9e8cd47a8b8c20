package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

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
	// Advertise is where this device serves its store (its fetch
	// address), named to the swarms of the fetches it makes.
	Advertise string

	// Metrics counts rounds, fetches and refusals (nil: not counted).
	Metrics *Metrics

	announced object.ID // the head last announced
	q         *quarantine
	leftOut   string // the .mesh names last logged as left out
}

// countRefused counts a head refused, for /metrics.
func (s *Syncer) countRefused() {
	if s.Metrics != nil {
		s.Metrics.HeadsRefused.Add(1)
	}
}

func (s *Syncer) quarantine() *quarantine {
	if s.q == nil {
		s.q = newQuarantine(s.Repo.Meta)
	}
	return s.q
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
	Head      object.ID            `json:"head,omitzero"`
	Missing   map[string]string    `json:"missing,omitempty"` // device → why its head is not here
	Refused   map[string]string    `json:"refused,omitempty"` // device → why its head is not taken in
	Heads     map[string]object.ID `json:"heads"`             // device → head heard of
	// Reached counts the devices this session was in contact with
	// (SyncUntilDone); Tried lists the gossip addresses it dialed.
	Reached int      `json:"reached"`
	Tried   []string `json:"tried"`
	// Remotes lists the remotes synced with directly (a device serving
	// without gossip, see Session.viaRemotes).
	Remotes []string `json:"remotes,omitempty"`
}

// Done reports whether HEAD now contains every head heard of: all were
// fetched, and Converge merged every one it was given.
func (r *Round) Done() bool { return len(r.Missing) == 0 && r.Merged != nil }

// Once runs one round.
func (s *Syncer) Once(ctx context.Context) (r *Round, err error) {
	if s.Metrics != nil {
		s.Metrics.Rounds.Add(1)
		defer func() {
			if err != nil {
				s.Metrics.RoundErrors.Add(1)
			}
		}()
	}
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
	out := &Round{Missing: map[string]string{}, Refused: map[string]string{}, Heads: map[string]object.ID{}}
	q := s.quarantine()

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
		if cr, err = s.Repo.Commit(ctx, repo.CommitOptions{Message: "sync", LeaveOutReserved: true}); err != nil {
			return nil, err
		}
		if left := strings.Join(cr.LeftOut, ", "); left != s.leftOut {
			s.leftOut = left
			if left != "" {
				log.Warn("Left out of the sync: a file or folder named .mesh cannot be committed; rename it, or add it to .meshignore", "paths", left)
			}
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

	// 2. Fetch what others announced. Heads keep coming while this runs
	// (every device converging at once); converging on a stale view would
	// only make one more merge for everyone to fetch, so fetching goes on
	// until a pass finds nothing new.
	for pass := 0; pass < 5; pass++ {
		if !s.fetchPass(ctx, log, branch, out, q) {
			break
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

// FetchWorkers bounds the fetches a round runs at once.
var FetchWorkers = 4

// fetchPass fetches every announced head of branch not in the store, each
// from its announcer or from any device announcing the same commit,
// newest announcements first (they are most often merges that hold the
// others, which then need no connection at all). It reports whether it
// fetched anything.
func (s *Syncer) fetchPass(ctx context.Context, log *slog.Logger, branch string, out *Round, q *quarantine) bool {
	heads := s.Node.Heads()
	sort.SliceStable(heads, func(i, j int) bool { return heads[i].Seq > heads[j].Seq })
	byCommit := map[object.ID][]gossip.Head{}
	for _, hd := range heads {
		if hd.Branch == branch {
			byCommit[hd.Commit] = append(byCommit[hd.Commit], hd)
		}
	}
	var (
		mu      sync.Mutex
		fetched bool
		wg      sync.WaitGroup
		slots   = make(chan struct{}, FetchWorkers)
	)
	for _, hd := range heads {
		if hd.Device == s.Me || hd.Branch != branch {
			continue
		}
		if r, ok := q.isRefused(hd.Device, branch, hd.Commit); ok {
			mu.Lock()
			out.Refused[hd.Device] = r.Reason
			mu.Unlock()
			continue
		}
		owner, err := remote.ParseDeviceID(hd.Device)
		if err != nil {
			continue
		}
		if s.Repo.Store.Has(hd.Commit) {
			// Held already (another head contained it, or it came before
			// heads were checked): check it, then note it.
			if err := s.Repo.CheckHead(hd.Commit); err != nil {
				q.refuse(log, hd.Device, branch, hd.Commit, err)
				s.countRefused()
				mu.Lock()
				out.Refused[hd.Device] = err.Error()
				mu.Unlock()
				continue
			}
			mu.Lock()
			out.Heads[hd.Device] = hd.Commit
			delete(out.Missing, hd.Device)
			mu.Unlock()
			s.Repo.FetchDevice(ctx, repo.DeviceFetch{Owner: owner, Branch: branch, Commit: hd.Commit})
			continue
		}
		mu.Lock()
		out.Heads[hd.Device] = hd.Commit
		delete(out.Missing, hd.Device)
		mu.Unlock()
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			var last error
			bad := 0 // sources whose answer was refusable
			tried := 0
			for _, src := range append([]gossip.Head{hd}, byCommit[hd.Commit]...) {
				if src.Device == s.Me || src.Addr == "" {
					continue
				}
				dev, err := remote.ParseDeviceID(src.Device)
				if err != nil {
					last = err
					continue
				}
				res, err := s.Repo.FetchDevice(ctx, repo.DeviceFetch{Addr: src.Addr, Src: dev, Owner: owner, Branch: branch,
					Commit: hd.Commit, Advertise: s.Advertise, Log: log})
				tried++
				if err != nil {
					if refusable(err) {
						bad++
					} else {
						log.Warn("Fetch failed", "device", src.Device, "addr", src.Addr, "commit", hd.Commit.String(), "error", err)
					}
					if s.Metrics != nil {
						s.Metrics.FetchFailures.Add(1)
					}
					last = err
					continue
				}
				if res.Objects > 0 {
					log.Info("Fetched", "device", src.Device, "commit", hd.Commit.String(), "objects", res.Objects, "bytes", res.Bytes, "from", res.Received)
				}
				if s.Metrics != nil {
					if len(res.Received) == 0 {
						s.Metrics.received(src.Device, int64(res.Objects), res.Bytes)
					} else {
						s.Metrics.ObjectsFetched.Add(int64(res.Objects))
						for d, n := range res.Received {
							if d == "source" {
								d = src.Device
							}
							s.Metrics.received(d, 0, n)
						}
					}
				}
				mu.Lock()
				out.Fetched = append(out.Fetched, src.Device)
				fetched = true
				mu.Unlock()
				return
			}
			mu.Lock()
			defer mu.Unlock()
			delete(out.Heads, hd.Device)
			if tried > 0 && bad == tried {
				// Every device that offered it sent something invalid: the
				// head itself is bad.
				q.refuse(log, hd.Device, branch, hd.Commit, last)
				s.countRefused()
				out.Refused[hd.Device] = last.Error()
				return
			}
			out.Heads[hd.Device] = hd.Commit
			out.Missing[hd.Device] = fmt.Sprint(last)
		}()
	}
	wg.Wait()
	return fetched
}
