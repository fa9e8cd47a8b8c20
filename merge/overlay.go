package merge

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/mesh-sync/mesh/object"
)

// overlay is a Store and Sink for one merge: what the merge writes goes to
// the real sink and is also kept here, so the merge can read it back
// before the sink is finished. A criss-cross merge needs this: the virtual
// base it builds (merged text with markers) is then read as a base.
type overlay struct {
	Store
	sink object.Sink
	mu   sync.Mutex
	objs map[object.ID]kept
}

type kept struct {
	t    object.Type
	body []byte
}

func newOverlay(st Store, sink object.Sink) *overlay {
	return &overlay{Store: st, sink: sink, objs: map[object.ID]kept{}}
}

func (o *overlay) Put(t object.Type, body []byte) (object.ID, error) {
	id, err := o.sink.Put(t, body)
	if err != nil {
		return id, err
	}
	o.mu.Lock()
	o.objs[id] = kept{t, append([]byte(nil), body...)}
	o.mu.Unlock()
	return id, nil
}

func (o *overlay) get(id object.ID, t object.Type) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.objs[id]
	if !ok || k.t != t {
		return nil, false
	}
	return k.body, true
}

func (o *overlay) ReadTree(id object.ID) (*object.Tree, error) {
	if b, ok := o.get(id, object.TypeTree); ok {
		return object.DecodeTree(b)
	}
	return o.Store.ReadTree(id)
}

func (o *overlay) ReadCommit(id object.ID) (*object.Commit, error) {
	if b, ok := o.get(id, object.TypeCommit); ok {
		return object.DecodeCommit(b)
	}
	return o.Store.ReadCommit(id)
}

// WriteFileTo writes a file this merge wrote from what it kept (every
// chunk of such a file passed through Put), any other from the store.
func (o *overlay) WriteFileTo(ctx context.Context, w io.Writer, id object.ID) (int64, error) {
	b, ok := o.get(id, object.TypeFile)
	if !ok {
		return o.Store.WriteFileTo(ctx, w, id)
	}
	f, err := object.DecodeFile(b)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range f.Chunks {
		data, ok := o.get(c.ID, object.TypeChunk)
		if !ok {
			return n, fmt.Errorf("merge: chunk %s of file %s written by this merge was not kept: %w", c.ID.Short(), id.Short(), object.ErrNotFound)
		}
		k, err := w.Write(data)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
