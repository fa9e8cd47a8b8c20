package syncer

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Quarantine. A device's head whose closure does not validate (a tree
// that would write into .mesh, an object over its limits, bytes that do
// not hash to their ID) is refused: no ref is written for it, it is not
// merged, the log says so once, and every round goes on with the other
// devices. It is tried again only once that device announces another
// head. One bad member can then neither stop the mesh nor, by leaving,
// leave a poisoned head behind that every round trips over.

// RefusedFile, in .mesh, lists the refused heads (mesh peers shows them).
const RefusedFile = "refused.json"

// Refusal is one refused head.
type Refusal struct {
	Device string    `json:"device"`
	Branch string    `json:"branch"`
	Commit object.ID `json:"commit"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// quarantine holds the refusals.
type quarantine struct {
	mu      sync.Mutex
	meta    string
	refused map[string]Refusal // device/branch →
}

func newQuarantine(meta string) *quarantine {
	q := &quarantine{meta: meta, refused: map[string]Refusal{}}
	for _, r := range LoadRefused(meta) {
		q.refused[r.Device+"/"+r.Branch] = r
	}
	return q
}

// LoadRefused reads .mesh/refused.json (nothing if absent or damaged).
func LoadRefused(meta string) []Refusal {
	b, err := os.ReadFile(filepath.Join(meta, RefusedFile))
	if err != nil {
		return nil
	}
	var rs []Refusal
	if json.Unmarshal(b, &rs) != nil {
		return nil
	}
	return rs
}

// isRefused reports whether device's head of branch at commit is
// refused; a refusal of another commit of that branch is forgotten.
func (q *quarantine) isRefused(device, branch string, commit object.ID) (Refusal, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := device + "/" + branch
	r, ok := q.refused[k]
	if ok && r.Commit != commit {
		delete(q.refused, k)
		q.saveLocked()
		return Refusal{}, false
	}
	return r, ok
}

// refuse records a refusal and logs it, once.
func (q *quarantine) refuse(log *slog.Logger, device, branch string, commit object.ID, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := device + "/" + branch
	if r, ok := q.refused[k]; ok && r.Commit == commit {
		return
	}
	q.refused[k] = Refusal{Device: device, Branch: branch, Commit: commit, Reason: err.Error(), Since: time.Now().UTC()}
	log.Warn("Refused a device's head: it is not merged, and tried again once the device announces another", "device", device, "branch", branch, "commit", commit.String(), "reason", err)
	q.saveLocked()
}

func (q *quarantine) saveLocked() {
	rs := make([]Refusal, 0, len(q.refused))
	for _, r := range q.refused {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Device+rs[i].Branch < rs[j].Device+rs[j].Branch })
	b, _ := json.MarshalIndent(rs, "", "  ")
	object.WriteFileAtomic(filepath.Join(q.meta, RefusedFile), append(b, '\n'), 0o644, false)
}

// refusable reports whether a fetch failed because of what was sent (the
// head is bad), not because a device could not be reached.
func refusable(err error) bool {
	for _, kind := range []error{object.ErrCorrupt, object.ErrMalformed, object.ErrReservedName, object.ErrTooLarge, remote.ErrProtocol, worktree.ErrUnsafePath} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}
