package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud"
)

// cloudScheme starts the URL of a bucket that is a cloud peer.
const cloudScheme = "s3://"

// isCloud reports whether url names a bucket.
func isCloud(url string) bool { return strings.HasPrefix(strings.ToLower(url), cloudScheme) }

// cloudCache is where this repository keeps what it learned of the
// bucket at url: its indexes, and the refs it saw.
func (r *Repo) cloudCache(url string) string {
	return filepath.Join(r.Meta, "cloud", cacheKey(url))
}

// cacheKey names a bucket's cache.
func cacheKey(url string) string {
	h := sha256.Sum256([]byte(url))
	return hex.EncodeToString(h[:8])
}

// newestHeads are a bucket's branches as heads/<branch>, each at the head
// of the device that pushed it last (by the time it signed), for get.
func newestHeads(refs map[string]*cloud.Ref) map[string]object.ID {
	best := map[string]*cloud.Ref{}
	for _, r := range refs {
		if b := best[r.Branch]; b == nil || r.Time > b.Time || r.Time == b.Time && r.Device > b.Device {
			best[r.Branch] = r
		}
	}
	out := map[string]object.ID{}
	for branch, r := range best {
		out["heads/"+branch] = r.Commit
	}
	return out
}

// openBucket opens the bucket at url with this mesh's secret.
func (r *Repo) openBucket(url string) (*cloud.Bucket, error) {
	m, err := r.Mesh()
	if err != nil {
		return nil, err
	}
	st, err := cloud.OpenS3(url)
	if err != nil {
		return nil, err
	}
	return cloud.Open(st, m.Secret[:], r.cloudCache(url))
}

// cloudRef is where a fetch keeps a device's head of branch from the
// bucket remote name: remotes/<name>/<device>/<branch>.
func cloudRef(name, device, branch string) string {
	return "remotes/" + name + "/" + device + "/" + branch
}

// fetchCloud fetches every device's heads from the bucket p.
func (r *Repo) fetchCloud(ctx context.Context, p *peer) (*FetchResult, error) {
	refs, err := p.bucket.Refs(ctx)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", p.name, err)
	}
	res := &FetchResult{Remote: p.name, Refs: map[string]object.ID{}, Cloud: true}
	var wants []object.ID
	for _, ref := range refs {
		wants = append(wants, ref.Commit)
		res.Refs[cloudRef(p.name, ref.Device, ref.Branch)] = ref.Commit
	}
	haves, err := r.localTips()
	if err != nil {
		return nil, err
	}
	p.bucket.Local = r.Store // the bases of deltas, where this store has them
	before := p.bucket.BytesRead()
	res.Stats, err = remote.Fetch(ctx, p.bucket, r.Store, wants, haves)
	res.Stats.Bytes = p.bucket.BytesRead() - before // as the bucket keeps them
	if err != nil {
		return res, fmt.Errorf("%w; no ref was changed (objects received so far are kept, so running it again resumes)", err)
	}
	return res, nil
}

// rollbacks is the error for the refs a bucket moved back and the refs
// and indexes it refused, if any: what could be fetched was.
func rollbacks(name string, b *cloud.Bucket) error {
	var errs []string
	if len(b.Rollbacks) > 0 {
		errs = append(errs, "the bucket moved refs back, which only its operator or a restore of it can do; the heads seen before are kept: "+strings.Join(b.Rollbacks, "; "))
	}
	if refused := b.Refused(); len(refused) > 0 {
		errs = append(errs, "left out what does not open with this mesh's key or check out (damaged, moved, or written by a device that lies; mesh fsck --remote "+name+" lists it): "+strings.Join(refused, "; "))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("remote %s: %s; the rest was fetched (%w)", name, strings.Join(errs, "; "), ErrSomeRefused)
}

// cloudHeads are the heads of branch the bucket remote name gave the
// last fetch, by device, this device's own left out, in device order.
func (r *Repo) cloudHeads(name, branch string, me remote.DeviceID) ([]string, error) {
	refs, err := r.Refs.List()
	if err != nil {
		return nil, err
	}
	var out []string
	prefix := "remotes/" + name + "/"
	for ref := range refs {
		rest, ok := strings.CutPrefix(ref, prefix)
		if !ok {
			continue
		}
		dev, b, ok := strings.Cut(rest, "/")
		if ok && b == branch && dev != me.String() {
			out = append(out, ref)
		}
	}
	sort.Strings(out)
	return out, nil
}

// pushCloud writes this device's head of its branch to the bucket p,
// only ever as a fast-forward of what it pushed there before.
func (r *Repo) pushCloud(ctx context.Context, p *peer, me *remote.Identity, h object.Head) (*PushResult, error) {
	res := &PushResult{Remote: p.name, Ref: deviceRef(me.ID, h.Branch)}
	refs, err := p.bucket.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	if old, ok := refs[me.ID.String()+"/"+h.Branch]; ok && old.Commit != h.ID {
		ok := false
		if r.Store.Has(old.Commit) {
			if ok, err = merge.IsAncestor(r.Store, old.Commit, h.ID); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s is at %s there, which %s does not contain: %w; pull, merge and push again", res.Ref, old.Commit.Short(), h.ID.Short(), ErrNotFastForward)
		}
	}
	pr, err := p.bucket.PushBranch(ctx, refs, r.Store, me, h.Branch, h.ID)
	if err != nil {
		return nil, err
	}
	res.Stats, res.UpToDate = pr.Stats, pr.UpToDate
	// The artifact branches go too: mesh get fetches them from the
	// bucket. Each is only ever moved by its publisher.
	local, err := r.Refs.List()
	if err != nil {
		return nil, err
	}
	for ref, id := range local {
		branch, ok := strings.CutPrefix(ref, "heads/")
		if !ok || !strings.HasPrefix(branch, ArtifactPrefix) {
			continue
		}
		ar, err := p.bucket.PushBranch(ctx, refs, r.Store, me, branch, id)
		if err != nil {
			return nil, fmt.Errorf("artifact branch %s: %w", branch, err)
		}
		res.Objects += ar.Objects
		res.Bytes += ar.Bytes
		res.UpToDate = res.UpToDate && ar.UpToDate
	}
	return res, nil
}

// Bucket opens the bucket a remote names (a configured remote's name or
// an s3:// URL), for fsck and gc.
func (r *Repo) Bucket(spec string) (*cloud.Bucket, error) {
	url := spec
	if rc, ok := r.Config.Remotes[spec]; ok {
		url = rc.URL
	}
	if !isCloud(url) {
		return nil, fmt.Errorf("%s: not a bucket (s3://BUCKET/PREFIX, or the name of a remote that is one): %w", spec, ErrNoRemote)
	}
	return r.openBucket(url)
}
