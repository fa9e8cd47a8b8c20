package remote

import "context"

// Progress is told how far a fetch has got: the bytes of chunks to fetch
// once the metadata is in (SetTotal), then each chunk's bytes as it
// arrives, from the source or any device of a swarm (Add). The CLI's
// progress meter is one.
type Progress interface {
	SetTotal(files, bytes int64)
	Add(files, bytes int64)
}

type progressKey struct{}

// WithProgress returns a context whose fetches report to p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	if p == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, p)
}

// progressOf is the Progress ctx carries, or one that ignores everything.
func progressOf(ctx context.Context) Progress {
	if p, ok := ctx.Value(progressKey{}).(Progress); ok && p != nil {
		return p
	}
	return noProgress{}
}

type noProgress struct{}

func (noProgress) SetTotal(int64, int64) {}
func (noProgress) Add(int64, int64)      {}
