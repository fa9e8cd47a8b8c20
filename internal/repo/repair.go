package repo

import (
	"context"
	"fmt"

	"github.com/mesh-sync/mesh/object"
)

// RepairResult says what Repair did.
type RepairResult struct {
	// Indexes says, per pack, what rebuilding its index did.
	Indexes []string `json:"indexes"`
	// Repaired counts the objects that came again, verified, and From
	// the remotes they came from.
	Repaired int      `json:"repaired"`
	From     []string `json:"from"`
	// Dropped counts the damaged copies removed once good ones were in.
	Dropped int `json:"dropped"`
	// Left lists what is still damaged or missing.
	Left []object.ID `json:"left"`
	// Unreached names the remotes that could not be asked, and why.
	Unreached map[string]string `json:"unreached,omitempty"`
}

// Repair mends the store: it rebuilds the index of every pack whose index
// is lost or damaged, checks every object (as fsck --read-data), fetches
// each damaged or missing one from spec (default: every remote), checked
// against its ID, and once those copies are durable rewrites the packs
// that hold the damaged ones without them. It returns the final check.
func (r *Repo) Repair(ctx context.Context, spec string) (*RepairResult, *object.FsckReport, error) {
	lock, err := r.Lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Release()
	res := &RepairResult{Indexes: []string{}, From: []string{}, Left: []object.ID{}, Unreached: map[string]string{}}
	if res.Indexes, err = r.Store.RebuildIndexes(); err != nil {
		return res, nil, err
	}
	rep, err := object.Fsck(ctx, r.Store, r.Refs, true)
	if err != nil {
		return res, nil, err
	}
	need := append(append([]object.ID(nil), rep.Damaged...), rep.Missing...)
	if len(need) == 0 {
		if len(rep.BadPacks) > 0 {
			// Damaged headers only: every object reads; rewrite the packs.
			if res.Dropped, err = r.Store.DropDamaged(ctx, nil, rep.BadPacks); err != nil {
				return res, rep, err
			}
			rep, err = object.Fsck(ctx, r.Store, r.Refs, true)
		}
		return res, rep, err
	}
	names := []string{spec}
	if spec == "" {
		names = r.RemoteNames()
	}
	if len(names) == 0 {
		return res, rep, fmt.Errorf("%d objects are damaged or missing and no remote is configured to fetch them from: give one (mesh fsck --repair tls://HOST:PORT or a path)", len(need))
	}
	got := map[object.ID]bool{}
	batch := r.Store.NewForcedBatch()
	defer batch.Abort()
	for _, name := range names {
		var want []object.ID
		for _, id := range need {
			if !got[id] {
				want = append(want, id)
			}
		}
		if len(want) == 0 {
			break
		}
		p, err := r.connect(ctx, name)
		if err != nil {
			res.Unreached[name] = err.Error()
			continue
		}
		n := 0
		take := func(id object.ID, raw object.Raw) error {
			body, err := r.Store.Expand(raw)
			if err != nil || object.Hash(raw.Type, body) != id {
				return nil // that copy is no good either: ask the next remote
			}
			if err := batch.PutRaw(id, raw); err != nil {
				return err
			}
			got[id] = true
			n++
			return nil
		}
		if p.conn != nil {
			_, err = p.conn.GetSome(ctx, want, take)
		} else {
			for _, id := range want {
				raw, gerr := p.other.Store.GetRaw(id)
				if gerr == nil {
					if err = take(id, raw); err != nil {
						break
					}
				}
			}
		}
		p.Close()
		if err != nil {
			res.Unreached[name] = err.Error()
		}
		if n > 0 {
			res.From = append(res.From, name)
			res.Repaired += n
		}
	}
	if err := batch.Finish(); err != nil {
		return res, rep, err
	}
	var replaced []object.ID
	for _, id := range rep.Damaged {
		if got[id] {
			replaced = append(replaced, id)
		}
	}
	if res.Dropped, err = r.Store.DropDamaged(ctx, replaced, rep.BadPacks); err != nil {
		return res, rep, err
	}
	if rep, err = object.Fsck(ctx, r.Store, r.Refs, true); err != nil {
		return res, nil, err
	}
	res.Left = append(append(res.Left, rep.Damaged...), rep.Missing...)
	if len(res.Left) > 0 {
		return res, rep, fmt.Errorf("%d objects are still damaged or missing (%s…): %w; no remote asked had them", len(res.Left), res.Left[0].Short(), object.ErrCorrupt)
	}
	return res, rep, nil
}
