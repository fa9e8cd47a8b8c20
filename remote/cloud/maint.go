package cloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// FsckReport says what Fsck found in a bucket.
type FsckReport struct {
	Packs   int `json:"packs"`
	Objects int `json:"objects"`
	Refs    int `json:"refs"`
	// Read is the objects opened and hashed (metadata, and with
	// readData every chunk).
	Read int `json:"read"`
	// Unreferenced are packs no index names: pushes cut short, which gc
	// deletes once older than its grace period.
	Unreferenced []string `json:"unreferenced,omitempty"`
	Problems     []string `json:"problems,omitempty"`
}

// packInfo is a pack as listed, and its index.
type packInfo struct {
	name     string
	size     int64
	modified time.Time
	entries  []indexEntry
	indexed  bool
}

// survey lists the packs and reads their indexes; a problem with one is
// noted, not fatal.
func (b *Bucket) survey(ctx context.Context, problem func(string)) (map[string]*packInfo, error) {
	packs := map[string]*packInfo{}
	list, err := b.st.List(ctx, packsDir)
	if err != nil {
		return nil, err
	}
	for _, in := range list {
		name := strings.TrimPrefix(in.Key, packsDir)
		packs[name] = &packInfo{name: name, size: in.Size, modified: in.Modified}
	}
	idx, err := b.st.List(ctx, indexesDir)
	if err != nil {
		return nil, err
	}
	for _, in := range idx {
		name := strings.TrimPrefix(in.Key, indexesDir)
		p := packs[name]
		if p == nil {
			problem(fmt.Sprintf("index %s names a pack the bucket does not hold", name))
			continue
		}
		es, err := b.readIndex(ctx, name)
		if err != nil {
			problem(err.Error())
			continue
		}
		p.entries, p.indexed = es, true
		for _, e := range es {
			if e.Off+int64(e.Len) > p.size {
				problem(fmt.Sprintf("pack %s: object %s at %d+%d is past the pack's %d bytes", name, e.ID.Short(), e.Off, e.Len, p.size))
				break
			}
		}
	}
	return packs, nil
}

// Fsck checks what the bucket holds: its format, every index, every
// ref's signature and sequence, that each object an index names is in its
// pack and opens and hashes to its ID (chunks only with readData), and
// that every object a commit, tree or file names is there.
func (b *Bucket) Fsck(ctx context.Context, readData bool) (*FsckReport, error) {
	rep := &FsckReport{}
	problem := func(s string) { rep.Problems = append(rep.Problems, s) }
	if _, err := b.checkConfig(ctx, false); err != nil {
		return nil, err
	}
	packs, err := b.survey(ctx, problem)
	if err != nil {
		return nil, err
	}
	have := map[object.ID]bool{}
	for _, p := range packs {
		if !p.indexed {
			rep.Unreferenced = append(rep.Unreferenced, p.name)
			continue
		}
		rep.Packs++
		for _, e := range p.entries {
			have[e.ID] = true
		}
	}
	rep.Objects = len(have)
	sort.Strings(rep.Unreferenced)
	refs, err := b.Refs(ctx)
	if err != nil {
		problem(err.Error())
	}
	rep.Refs = len(refs)
	for name, r := range refs {
		if !have[r.Commit] {
			problem(fmt.Sprintf("ref %s is at %s, which the bucket does not hold", name, r.Commit.Short()))
		}
	}
	for _, name := range b.Rollbacks {
		problem("ref moved back: " + name)
	}
	for _, why := range b.refusedRefs {
		problem(why) // an index that does not open is one already (survey)
	}
	for _, p := range packs {
		if !p.indexed {
			continue
		}
		var want []indexEntry
		for _, e := range p.entries {
			if readData || e.Type != object.TypeChunk {
				want = append(want, e)
			}
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Off < want[j].Off })
		err := b.readRuns(ctx, p.name, want, func(e indexEntry, r object.Raw) error {
			rep.Read++
			body, err := expand(r)
			if err == nil && object.Hash(e.Type, body) != e.ID {
				err = errors.New("content does not match its ID")
			}
			if err != nil {
				problem(fmt.Sprintf("object %s in pack %s: %v", e.ID.Short(), p.name, err))
				return nil
			}
			kids, err := object.Children(e.Type, body)
			if err != nil {
				problem(fmt.Sprintf("object %s in pack %s: %v", e.ID.Short(), p.name, err))
				return nil
			}
			for _, k := range kids {
				if !have[k] {
					problem(fmt.Sprintf("%s %s names %s, which the bucket does not hold", e.Type, e.ID.Short(), k.Short()))
				}
			}
			return nil
		})
		if err != nil {
			problem(err.Error())
		}
	}
	sort.Strings(rep.Problems)
	return rep, nil
}

// expand is r's body.
func expand(r object.Raw) ([]byte, error) {
	if r.Comp == 0 {
		return r.Data, nil
	}
	body, err := decoder.DecodeAll(r.Data, make([]byte, 0, r.Size))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress: %v", err)
	}
	if len(body) != r.Size {
		return nil, fmt.Errorf("length %d, index says %d", len(body), r.Size)
	}
	return body, nil
}

// GCResult says what GC deleted.
type GCResult struct {
	PacksDeleted int   `json:"packsDeleted"`
	BytesFreed   int64 `json:"bytesFreed"`
	// PacksRewritten counts packs of which a quarter or more was garbage,
	// written again with only what is needed.
	PacksRewritten int `json:"packsRewritten"`
	// PartlyUsed counts the packs kept as they are though some of their
	// objects are not needed; Unused is the bytes in them nothing needs.
	PartlyUsed int   `json:"partlyUsed"`
	Unused     int64 `json:"unused"`
}

// GC deletes, once older than grace, the packs no index names (pushes cut
// short) and the packs none of whose objects any device's ref needs,
// index first, and writes again with only what is needed each pack of
// which a quarter or more is garbage. A pack younger than grace is kept
// whatever it holds: a push may be writing its ref.
func (b *Bucket) GC(ctx context.Context, grace time.Duration, now time.Time) (*GCResult, error) {
	var problems []string
	packs, err := b.survey(ctx, func(s string) { problems = append(problems, s) })
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s; nothing was deleted (mesh fsck --remote says more)", b, strings.Join(problems, "; "))
	}
	refs, err := b.Refs(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	// What the refs need: walk the metadata, read with a few GETs a pack.
	needed := map[object.ID]bool{}
	var stack []object.ID
	for _, r := range refs {
		stack = append(stack, r.Commit)
	}
	// And what packs younger than grace hold, with all they name: a push
	// writes its pack before its ref, and may name objects of older packs.
	cutoff := now.Add(-grace)
	for _, p := range packs {
		if p.modified.After(cutoff) {
			for _, e := range p.entries {
				stack = append(stack, e.ID)
			}
		}
	}
	for len(stack) > 0 {
		var at []located
		for _, id := range stack {
			if !needed[id] {
				needed[id] = true
				if l, ok := b.where(id); ok && l.e.Type != object.TypeChunk {
					at = append(at, l)
				}
			}
		}
		stack = nil
		// In pack order, so that neighbours share a ranged GET.
		sort.Slice(at, func(i, j int) bool {
			return at[i].pack < at[j].pack || at[i].pack == at[j].pack && at[i].e.Off < at[j].e.Off
		})
		level := make([]object.ID, len(at))
		for i, l := range at {
			level[i] = l.e.ID
		}
		err := b.Get(ctx, level, func(id object.ID, r object.Raw) error {
			body, err := expand(r)
			if err != nil {
				return fmt.Errorf("object %s: %w", id.Short(), err)
			}
			if object.Hash(r.Type, body) != id {
				return fmt.Errorf("object %s: content does not match its ID: %w", id.Short(), object.ErrCorrupt)
			}
			kids, err := object.Children(r.Type, body)
			if err != nil {
				return err
			}
			stack = append(stack, kids...)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w; nothing was deleted", b, err)
		}
	}
	// A delta needs its bases.
	for id := range needed {
		if l, ok := b.where(id); ok && l.e.Comp == compDelta {
			for _, base := range l.e.Bases {
				needed[base.ID] = true
			}
		}
	}
	res := &GCResult{}
	for _, p := range packs {
		if p.modified.After(cutoff) {
			continue
		}
		used := int64(0)
		for _, e := range p.entries {
			if needed[e.ID] {
				used += int64(e.Len)
			}
		}
		if used > 0 && p.size-used < p.size/4 {
			if used < p.size {
				res.PartlyUsed++
				res.Unused += p.size - used
			}
			continue
		}
		if used > 0 {
			// A new pack of what is needed, indexed, before the old
			// one's index and pack go.
			var keep []indexEntry
			for _, e := range p.entries {
				if needed[e.ID] {
					keep = append(keep, e)
				}
			}
			sort.Slice(keep, func(i, j int) bool { return keep[i].Off < keep[j].Off })
			_, st, err := b.upload(ctx, len(keep), func(emit func(indexEntry, []byte) error) error {
				return b.readRuns(ctx, p.name, keep, func(e indexEntry, r object.Raw) error {
					// A delta comes expanded: it is kept whole now.
					return emit(indexEntry{ID: e.ID, Type: r.Type, Comp: r.Comp, Size: uint32(r.Size)}, r.Data)
				})
			})
			if err != nil {
				return res, fmt.Errorf("%s: rewriting pack %s: %w; it is kept as it was", b, p.name, err)
			}
			res.PacksRewritten++
			res.BytesFreed -= st.Bytes
		}
		if p.indexed {
			if err := b.st.Delete(ctx, indexesDir+p.name); err != nil {
				return res, err
			}
		}
		if err := b.st.Delete(ctx, packsDir+p.name); err != nil {
			return res, err
		}
		if used == 0 {
			res.PacksDeleted++
		}
		res.BytesFreed += p.size
	}
	return res, nil
}
