package repo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/mesh-sync/mesh/internal/ignore"
	"github.com/mesh-sync/mesh/merge"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud"
)

// ErrNoRemote is returned for a remote name that is not configured.
var ErrNoRemote = errors.New("no such remote")

// tlsScheme starts the URL of a device reached over the network.
const tlsScheme = "tls://"

var remoteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// AddRemote records a remote: a path to another repository, or
// tls://HOST:PORT (with the device ID expected there, if known).
func (r *Repo) AddRemote(ctx context.Context, name, url, device string) error {
	return r.addRemote(ctx, name, RemoteConfig{URL: url, Device: device})
}

func (r *Repo) addRemote(ctx context.Context, name string, rc RemoteConfig) error {
	url, device := rc.URL, rc.Device
	if !remoteNameRE.MatchString(name) || strings.HasSuffix(name, ".lock") {
		return fmt.Errorf("%q cannot name a remote: use letters, digits, '.', '_' and '-'", name)
	}
	if device != "" {
		d, err := remote.ParseDeviceID(device)
		if err != nil {
			return err
		}
		device = d.String()
	}
	target, network, err := splitURL(url)
	if isCloud(url) {
		if _, _, err := cloud.ParseURL(url); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if network {
		if err := remote.CheckDialAddr(target); err != nil {
			return fmt.Errorf("%s: want tls://HOST:PORT: %w", url, err)
		}
	} else {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		url = abs
	}
	return r.editConfig(ctx, func(c *Config) error {
		if _, ok := c.Remotes[name]; ok {
			return fmt.Errorf("remote %s already exists; remove it first (mesh remote remove %s)", name, name)
		}
		if c.Remotes == nil {
			c.Remotes = map[string]RemoteConfig{}
		}
		rc.URL, rc.Device = url, device
		c.Remotes[name] = rc
		return nil
	})
}

// RemoveRemote forgets a remote and its remotes/NAME/* refs.
func (r *Repo) RemoveRemote(ctx context.Context, name string) error {
	err := r.editConfig(ctx, func(c *Config) error {
		if _, ok := c.Remotes[name]; !ok {
			return fmt.Errorf("%s: %w (see mesh remote list)", name, ErrNoRemote)
		}
		delete(c.Remotes, name)
		return nil
	})
	if err != nil {
		return err
	}
	refs, err := r.Refs.List()
	if err != nil {
		return err
	}
	for ref, id := range refs {
		if strings.HasPrefix(ref, "remotes/"+name+"/") {
			if err := r.Refs.Update(ctx, ref, id, object.ZeroID, "remote remove "+name); err != nil {
				return err
			}
		}
	}
	return nil
}

// editConfig changes .mesh/config under the repository lock.
func (r *Repo) editConfig(ctx context.Context, edit func(*Config) error) error {
	lock, err := r.Lock(ctx)
	if err != nil {
		return err
	}
	defer lock.Release()
	fresh, err := Open(r.Root)
	if err != nil {
		return err
	}
	cfg := fresh.Config
	fresh.Close()
	if err := edit(&cfg); err != nil {
		return err
	}
	if err := writeConfig(r.Meta, cfg); err != nil {
		return err
	}
	r.Config = cfg
	return nil
}

// RemoteNames lists the configured remotes, sorted.
func (r *Repo) RemoteNames() []string {
	var names []string
	for n := range r.Config.Remotes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// peer is an open connection to a remote.
type peer struct {
	remote.Peer
	name   string // names its refs: remotes/<name>/<branch>
	conn   *remote.Conn
	other  *Repo
	bucket *cloud.Bucket // a cloud peer: refs remotes/<name>/<device>/<branch>
}

func (p *peer) Close() {
	if p.conn != nil {
		p.conn.Close()
	}
	if p.other != nil {
		p.other.Close()
	}
}

// connect opens spec: a configured remote's name, tls://HOST:PORT, or
// the path of another repository.
func (r *Repo) connect(ctx context.Context, spec string) (*peer, error) {
	name, rc := spec, RemoteConfig{URL: spec}
	configured := false
	if c, ok := r.Config.Remotes[spec]; ok {
		rc, configured = c, true
	}
	if isCloud(rc.URL) {
		if !configured {
			b, prefix, err := cloud.ParseURL(rc.URL)
			if err != nil {
				return nil, err
			}
			name = remoteName(b + "-" + strings.ReplaceAll(prefix, "/", "-"))
		}
		b, err := r.openBucket(rc.URL)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", name, err)
		}
		return &peer{Peer: b, name: name, bucket: b}, nil
	}
	target, network, err := splitURL(rc.URL)
	if err != nil {
		return nil, err
	}
	if !configured && !network {
		if _, err := os.Stat(target); err != nil {
			return nil, fmt.Errorf("%s: %w, and no repository is at that path (see mesh remote list)", spec, ErrNoRemote)
		}
		name = remoteName(target)
	}
	if network {
		addr := target
		if !configured {
			name = remoteName(strings.ReplaceAll(addr, ":", "-"))
		}
		auth, err := r.Auth()
		if err != nil {
			return nil, err
		}
		var want remote.DeviceID
		if rc.Device != "" {
			if want, err = remote.ParseDeviceID(rc.Device); err != nil {
				return nil, fmt.Errorf("remote %s: %w", name, err)
			}
		}
		c, err := auth.Dial(ctx, addr, want)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", name, err)
		}
		return &peer{Peer: c, name: name, conn: c}, nil
	}
	other, err := Open(target)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", name, err)
	}
	if other.Config.Chunking != r.Config.Chunking {
		other.Close()
		return nil, fmt.Errorf("remote %s at %s cuts files with %+v, this repository with %+v; they are not of one mesh", name, other.Root, other.Config.Chunking, r.Config.Chunking)
	}
	return &peer{Peer: &remote.Local{Objects: other.Store, Refs: other.Refs, Name: other.Root}, name: name, other: other}, nil
}

var unsafeRefChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func remoteName(root string) string {
	n := strings.Trim(unsafeRefChars.ReplaceAllString(filepath.Base(root), "-"), ".-")
	if n == "" {
		n = "remote"
	}
	return n
}

// FetchResult says what a fetch brought and which refs it set.
type FetchResult struct {
	Remote string `json:"remote"`
	remote.Stats
	Refs map[string]object.ID `json:"refs"`
	// Received is the bytes of chunks received from each device ("source"
	// is the remote itself) when the fetch spread them over a swarm.
	Received map[string]int64 `json:"received,omitempty"`
	// Refused lists the refs not moved: their heads cannot be checked
	// out (see CheckHead).
	Refused []string `json:"refused,omitempty"`
	// Cloud is set for a bucket: its refs are every device's heads,
	// remotes/<name>/<device>/<branch>.
	Cloud bool `json:"cloud,omitempty"`
}

// Fetch brings in the branches of spec (a remote, tls://HOST:PORT or a
// path), or of every configured remote when spec is empty: objects first
// (only what is missing), then refs remotes/<name>/<branch>.
func (r *Repo) Fetch(ctx context.Context, spec string) ([]*FetchResult, error) {
	defer r.autoRepack(ctx)
	specs := []string{spec}
	if spec == "" {
		specs = r.RemoteNames()
		if len(specs) == 0 {
			return nil, fmt.Errorf("%w configured: add one with mesh remote add NAME URL, or name a path", ErrNoRemote)
		}
	}
	var out []*FetchResult
	var partly []error
	for _, s := range specs {
		p, err := r.connect(ctx, s)
		if err != nil {
			return out, errors.Join(append(partly, err)...)
		}
		res, err := r.fetchFrom(ctx, p)
		p.Close()
		if errors.Is(err, ErrSomeRefused) {
			// The rest of that remote was fetched: go on.
			partly = append(partly, err)
			out = append(out, res)
			continue
		}
		if err != nil {
			return out, errors.Join(append(partly, err)...)
		}
		out = append(out, res)
	}
	return out, errors.Join(partly...)
}

// ErrSomeRefused is the kind of error for a fetch that left some refs
// out (heads that cannot be checked out, refs a bucket moved back or that
// do not check out) and fetched the rest: what depends on those goes on.
var ErrSomeRefused = errors.New("some refs were left out")

func (r *Repo) localTips() ([]object.ID, error) {
	refs, err := r.Refs.List()
	if err != nil {
		return nil, err
	}
	var tips []object.ID
	for _, id := range refs {
		tips = append(tips, id)
	}
	return tips, nil
}

func (r *Repo) fetchFrom(ctx context.Context, p *peer) (*FetchResult, error) {
	if p.bucket != nil {
		res, err := r.fetchCloud(ctx, p)
		if err != nil {
			return res, err
		}
		if err := r.setFetchedRefs(ctx, p, res); err != nil {
			return res, err
		}
		return res, rollbacks(p.name, p.bucket)
	}
	refs, err := p.ListRefs(ctx)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", p.name, err)
	}
	res := &FetchResult{Remote: p.name, Refs: map[string]object.ID{}}
	var wants []object.ID
	for ref, id := range refs {
		if branch, ok := strings.CutPrefix(ref, "heads/"); ok {
			wants = append(wants, id)
			res.Refs["remotes/"+p.name+"/"+branch] = id
		}
	}
	var st remote.Stats
	if p.conn != nil {
		// A device: other devices holding or fetching these heads send
		// what they have too. This process serves nobody meanwhile.
		st, res.Received, err = r.fetchSwarm(ctx, p.conn, wants, "", nil)
	} else {
		var haves []object.ID
		if haves, err = r.localTips(); err == nil {
			st, err = remote.Fetch(ctx, p, r.Store, wants, haves)
		}
	}
	res.Stats = st
	if err != nil {
		return res, fmt.Errorf("%w; no ref was changed (chunks received so far are kept, so running it again resumes)", err)
	}
	return res, r.setFetchedRefs(ctx, p, res)
}

// setFetchedRefs moves the refs a fetch from p brought, once their
// objects are durable, and prunes those p no longer has.
func (r *Repo) setFetchedRefs(ctx context.Context, p *peer, res *FetchResult) error {
	// The objects are durable; now the refs, of heads that can be checked
	// out: one that cannot is named, and its ref is left as it was.
	var refused []error
	for ref, id := range res.Refs {
		if err := r.CheckHead(id); err != nil {
			refused = append(refused, fmt.Errorf("%s: %w", ref, err))
			delete(res.Refs, ref)
			res.Refused = append(res.Refused, ref)
			continue
		}
		old, _, err := r.Refs.Get(ref)
		if err != nil {
			return err
		}
		if old != id {
			if err := r.Refs.Update(ctx, ref, old, id, "fetch: from "+p.String()); err != nil {
				return err
			}
		}
	}
	// A branch the remote no longer has goes away here too, as git's
	// fetch --prune does; its commits stay reachable from the reflog.
	mine, err := r.Refs.List()
	if err != nil {
		return err
	}
	for ref, id := range mine {
		if strings.HasPrefix(ref, "remotes/"+p.name+"/") && res.Refs[ref].IsZero() && !slices.Contains(res.Refused, ref) {
			if err := r.Refs.Update(ctx, ref, id, object.ZeroID, "fetch: pruned"); err != nil {
				return err
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("remote %s: refused %w; the other refs were fetched (%w)", p.name, errors.Join(refused...), ErrSomeRefused)
	}
	return nil
}

// PullResult is a fetch and the merges that followed.
type PullResult struct {
	Fetched []*FetchResult `json:"fetched"`
	Merged  []*MergeResult `json:"merged"`
}

// Pull fetches spec (or every remote) and merges, one at a time in the
// order of their names, the remotes' branches of the current branch's name.
func (r *Repo) Pull(ctx context.Context, spec string, o MergeOptions) (*PullResult, error) {
	h, err := r.Head()
	if err != nil {
		return nil, err
	}
	if h.Branch == "" {
		return nil, errors.New("HEAD is detached: check out a branch to pull into")
	}
	fetched, err := r.Fetch(ctx, spec)
	res := &PullResult{Fetched: fetched}
	if err != nil && !errors.Is(err, ErrSomeRefused) {
		return res, err
	}
	partly := err // merged anyway, then returned
	for _, f := range fetched {
		refs := []string{"remotes/" + f.Remote + "/" + h.Branch}
		if f.Cloud {
			// Every other device's head, in the order of their IDs:
			// the merge commits are the ones those devices make.
			ident, err := r.Identity()
			if err != nil {
				return res, err
			}
			if refs, err = r.cloudHeads(f.Remote, h.Branch, ident.ID); err != nil {
				return res, err
			}
		}
		for _, ref := range refs {
			if _, ok := f.Refs[ref]; !ok {
				continue
			}
			m, err := r.Merge(ctx, ref, o)
			if err != nil {
				return res, err
			}
			res.Merged = append(res.Merged, m)
		}
	}
	return res, partly
}

// PushResult says what a push sent.
type PushResult struct {
	Remote string `json:"remote"`
	Ref    string `json:"ref"`
	remote.Stats
	UpToDate bool `json:"upToDate"`
}

// deviceRef is the ref, on another device, that holds this device's head
// of branch as last pushed or announced.
func deviceRef(dev remote.DeviceID, branch string) string {
	return "devices/" + dev.String() + "/" + branch
}

// Push sends the current branch to spec (or every remote), where it sets
// devices/<this device>/<branch>, only ever as a fast-forward. It never
// touches the other side's branches or working tree.
func (r *Repo) Push(ctx context.Context, spec string) ([]*PushResult, error) {
	h, err := r.Head()
	if err != nil {
		return nil, err
	}
	if h.Branch == "" || h.ID.IsZero() {
		return nil, fmt.Errorf("nothing to push: %w on a branch", ErrNoCommits)
	}
	ident, err := r.Identity()
	if err != nil {
		return nil, err
	}
	specs := []string{spec}
	if spec == "" {
		if specs = r.RemoteNames(); len(specs) == 0 {
			return nil, fmt.Errorf("%w configured: add one with mesh remote add NAME URL, or name a path", ErrNoRemote)
		}
	}
	ref := deviceRef(ident.ID, h.Branch)
	var out []*PushResult
	for _, s := range specs {
		p, err := r.connect(ctx, s)
		if err != nil {
			return out, err
		}
		var res *PushResult
		if p.bucket != nil {
			res, err = r.pushCloud(ctx, p, ident, h)
		} else {
			res, err = r.pushTo(ctx, p, ident.ID, ref, h)
		}
		p.Close()
		if err != nil {
			return out, fmt.Errorf("push to %s: %w", p.name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *Repo) pushTo(ctx context.Context, p *peer, me remote.DeviceID, ref string, h object.Head) (*PushResult, error) {
	res := &PushResult{Remote: p.name, Ref: ref}
	refs, err := p.ListRefs(ctx)
	if err != nil {
		return nil, err
	}
	old := refs[ref]
	if old == h.ID {
		res.UpToDate = true
		return res, nil
	}
	local := &remote.Local{Objects: r.Store, Refs: r.Refs, Name: r.Root}
	if p.conn != nil {
		res.Stats, err = p.conn.Push(ctx, local, h.Branch, old, h.ID)
		return res, err
	}
	// A repository on disk: fetch into it from here, under its lock.
	lock, err := p.other.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	haves, err := p.other.localTips()
	if err != nil {
		return nil, err
	}
	if res.Stats, err = remote.Fetch(ctx, local, p.other.Store, []object.ID{h.ID}, haves); err != nil {
		return res, err
	}
	return res, p.other.AcceptPush(ctx, me, h.Branch, old, h.ID)
}

// ErrNotFastForward is returned when a push would drop commits.
var ErrNotFastForward = errors.New("not a fast-forward")

// AcceptPush moves devices/<from>/<branch> from old to new, once new's
// closure is in the store, if new contains the ref's present commit.
func (r *Repo) AcceptPush(ctx context.Context, from remote.DeviceID, branch string, old, new object.ID) error {
	ref := deviceRef(from, branch)
	if !object.ValidRefName(ref) {
		return fmt.Errorf("cannot push to branch %q", branch)
	}
	if err := r.CheckHead(new); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	cur, _, err := r.Refs.Get(ref)
	if err != nil {
		return err
	}
	if cur != old {
		return fmt.Errorf("%s is at %s, not %s: %w; fetch and try again", ref, cur.Short(), old.Short(), object.ErrRefMoved)
	}
	if !cur.IsZero() {
		ok, err := merge.IsAncestor(r.Store, cur, new)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is at %s, which %s does not contain: %w; pull, merge and push again", ref, cur.Short(), new.Short(), ErrNotFastForward)
		}
	}
	return r.Refs.Update(ctx, ref, old, new, "push from "+from.String())
}

// ServeAddrFile, in .mesh, holds the address other devices reach mesh
// serve (or a daemon's server) at while it runs: mesh invite puts it in
// the token.
const ServeAddrFile = "serve.addr"

// ErrServing is the kind of error for a second process that would serve
// a repository another one serves already.
var ErrServing = errors.New("another mesh process serves this repository")

// LockServing takes .mesh/serve.lock, held by the one process that serves
// the repository (mesh serve, sync or daemon) for as long as it runs: two
// would announce and fetch over each other, and the one that stops first
// would remove the other's address files. The kernel drops the lock of a
// killed process.
func (r *Repo) LockServing() (*object.Lock, error) {
	l, pid, err := object.TryLock(filepath.Join(r.Meta, "serve.lock"))
	if errors.Is(err, object.ErrLocked) {
		holder := "another mesh process"
		if pid != "" {
			holder += " (pid " + pid + ")"
		}
		return nil, fmt.Errorf("%s already serves %s (mesh serve, sync or daemon): %w; stop it first: one process serves a repository at a time, and a running daemon syncs it by itself", holder, r.Root, ErrServing)
	}
	return l, err
}

// Serve answers the devices of this mesh on ln until ctx ends: fetches,
// and pushes of their own device refs. addr (what other devices dial) is
// in .mesh/serve.addr while it runs.
func (r *Repo) Serve(ctx context.Context, ln net.Listener, addr string, log *slog.Logger) error {
	return r.ServeTracking(ctx, ln, addr, log, remote.NewTracker(), nil)
}

// ServeTracking is Serve with the tracker given (a daemon's knows of the
// devices gossip names), telling sent (when set) what each device was
// sent.
func (r *Repo) ServeTracking(ctx context.Context, ln net.Listener, addr string, log *slog.Logger, t *remote.Tracker, sent func(remote.DeviceID, int64)) error {
	auth, err := r.Auth()
	if err != nil {
		return err
	}
	addrFile := filepath.Join(r.Meta, ServeAddrFile)
	if err := object.WriteFileAtomic(addrFile, []byte(addr+"\n"), 0o644, false); err != nil {
		return err
	}
	defer os.Remove(addrFile)
	s := &remote.Server{
		Auth:    auth,
		Local:   &remote.Local{Objects: r.Store, Refs: r.Refs, Name: r.Root},
		Push:    r.AcceptPush,
		Log:     log,
		Tracker: t,
		Sent:    sent,
	}
	return s.Serve(ctx, ln)
}

// GossipAddrFile, in .mesh, holds the gossip address of the running
// mesh sync or daemon (mesh invite puts it in the token too).
const GossipAddrFile = "gossip.addr"

// ErrNoAddr is the kind of error for an invite that would not say where
// the new device fetches from.
var ErrNoAddr = errors.New("no address to fetch from")

// Invite makes a token for a new device: the mesh secret, the chunking,
// and where to fetch from: addr, or the address the running mesh serve or
// daemon advertises (and its gossip address, so the new device's first
// sync finds the mesh). An address no other device could dial is refused.
func (r *Repo) Invite(addr string) (string, error) {
	m, err := r.Mesh()
	if err != nil {
		return "", err
	}
	if addr == "" {
		b, err := os.ReadFile(filepath.Join(r.Meta, ServeAddrFile))
		if err != nil {
			return "", fmt.Errorf("no mesh serve or daemon runs in %s, so the token would not say where to fetch from: %w; start one (mesh daemon) or give --addr HOST:PORT, the address the new device reaches this one at", r.Root, ErrNoAddr)
		}
		addr = strings.TrimSpace(string(b))
	}
	if isCloud(addr) {
		// A bucket: the new device clones from it alone.
		if _, _, err := cloud.ParseURL(addr); err != nil {
			return "", fmt.Errorf("invite: %w", err)
		}
		inv := remote.Invite{Mesh: m, Chunking: r.Config.Chunking, Addr: addr}
		return inv.Token(), nil
	}
	if err := remote.CheckDialAddr(addr); err != nil {
		return "", fmt.Errorf("invite: %w", err)
	}
	inv := remote.Invite{Mesh: m, Chunking: r.Config.Chunking, Addr: addr, Device: r.Config.Device}
	if b, err := os.ReadFile(filepath.Join(r.Meta, GossipAddrFile)); err == nil {
		if g := strings.TrimSpace(string(b)); remote.CheckDialAddr(g) == nil {
			inv.Gossip = g
		}
	}
	return inv.Token(), nil
}

// JoinResult says what Join made.
type JoinResult struct {
	Root    string       `json:"root"`
	Device  string       `json:"device"`
	Name    string       `json:"name,omitempty"`
	Mesh    string       `json:"mesh"`
	Fetched *FetchResult `json:"fetched,omitempty"`
	Head    object.ID    `json:"head,omitzero"`
	// Adopted is the commit of the files that were in the folder before
	// (this device's first commit, merged with the mesh's history).
	Adopted *CommitResult `json:"adopted,omitempty"`
	// Conflicts are where an adopted file and the mesh's version differ:
	// both are kept.
	Conflicts []OpenConflict `json:"conflicts"`
}

// JoinOptions are what mesh join takes besides the token and folder.
type JoinOptions struct {
	// Name is the new device's name (default: DefaultDeviceName).
	Name string
}

// Join creates a repository in dir as a new device of the mesh the token
// names, adds the inviting device as remote "origin" (with its gossip
// address, a seed for sync), fetches its history and checks out its main
// branch (like git clone). When the token's device cannot be reached or
// the fetch fails, what Join created is removed again: nothing is left
// half-made.
func Join(ctx context.Context, token, dir string, o JoinOptions) (*Repo, *JoinResult, error) {
	inv, err := remote.ParseInvite(token)
	if err != nil {
		return nil, nil, err
	}
	if inv.Addr == "" {
		return nil, nil, fmt.Errorf("the token says nowhere to fetch from (made while no mesh serve or daemon ran): %w; ask for a new one, made with mesh invite --addr HOST:PORT or while mesh daemon runs", ErrNoAddr)
	}
	if isCloud(inv.Addr) {
		if _, _, err := cloud.ParseURL(inv.Addr); err != nil {
			return nil, nil, fmt.Errorf("the token's address: %w; ask for a new one, made with mesh invite --addr s3://BUCKET/PREFIX", err)
		}
	} else if err := remote.CheckDialAddr(inv.Addr); err != nil {
		return nil, nil, fmt.Errorf("the token's address: %w; ask for a new one, made with mesh invite --addr HOST:PORT", err)
	}
	if o.Name != "" && !object.ValidDeviceName(o.Name) {
		return nil, nil, fmt.Errorf("--name %q: use up to %d letters, digits, '.', '_' and '-', not starting with '.' or '-'", o.Name, object.MaxDeviceNameLen)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	_, statErr := os.Stat(abs)
	madeDir := isNotExist(statErr)
	r, err := InitNested(abs, &inv, false)
	if err != nil {
		return nil, nil, err
	}
	undo := func(err error) (*Repo, *JoinResult, error) {
		r.Close()
		os.RemoveAll(r.Meta)
		if madeDir {
			os.Remove(abs)
		}
		return nil, nil, fmt.Errorf("join: %w; nothing was created in %s", err, abs)
	}
	if o.Name != "" {
		if err := r.SetConfig(ctx, "name", o.Name); err != nil {
			return undo(err)
		}
	}
	res := &JoinResult{Root: r.Root, Device: r.Config.Device, Name: r.Config.Name, Mesh: r.Config.Mesh, Conflicts: []OpenConflict{}}
	// Files already in the folder are adopted: committed as this device's
	// first commit before anything is fetched, then merged with the
	// mesh's history, so none is overwritten. What cannot be committed
	// (a name no tree may hold) makes join refuse, with the folder as it
	// was.
	if !madeDir && !onlyMeta(abs) {
		cr, err := r.Commit(ctx, CommitOptions{Message: "join: the files that were in " + filepath.Base(abs)})
		if err != nil {
			return undo(fmt.Errorf("the files already in the folder cannot be adopted: %w", err))
		}
		if cr.Created {
			res.Adopted = cr
		}
	}
	origin := RemoteConfig{URL: tlsScheme + inv.Addr, Device: inv.Device, Gossip: inv.Gossip}
	if isCloud(inv.Addr) {
		origin = RemoteConfig{URL: inv.Addr}
	}
	if err := r.addRemote(ctx, "origin", origin); err != nil {
		return undo(err)
	}
	fetched, err := r.Fetch(ctx, "origin")
	if err != nil {
		return undo(err)
	}
	res.Fetched = fetched[0]
	if res.Fetched.Cloud {
		// Every device's head of main, merged as the devices merge them.
		heads, err := r.cloudHeads("origin", "main", remote.DeviceID{})
		if err != nil {
			return undo(err)
		}
		for _, ref := range heads {
			m, err := r.Merge(ctx, ref, MergeOptions{AllowUnrelated: true})
			if err != nil {
				return r, res, fmt.Errorf("%w; the repository at %s holds the history: run mesh merge --allow-unrelated %s there", err, r.Root, ref)
			}
			res.Head = m.ID
			res.Conflicts = append(res.Conflicts, m.Conflicts...)
		}
		if len(heads) == 0 && res.Adopted != nil {
			res.Head = res.Adopted.ID
		}
	} else if _, ok := res.Fetched.Refs["remotes/origin/main"]; ok {
		m, err := r.Merge(ctx, "remotes/origin/main", MergeOptions{AllowUnrelated: true})
		if err != nil {
			return r, res, fmt.Errorf("%w; the repository at %s holds the history: run mesh merge --allow-unrelated remotes/origin/main there", err, r.Root)
		}
		res.Head = m.ID
		res.Conflicts = m.Conflicts
	} else if res.Adopted != nil {
		res.Head = res.Adopted.ID
	}
	return r, res, nil
}

// onlyMeta reports whether dir holds nothing but .mesh.
func onlyMeta(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() != ignore.MetaDir {
			return false
		}
	}
	return true
}

// swarmMinBytes: a fetch missing fewer bytes of chunks than this takes
// them all from its source (remote.Swarm.MinBytes): an edited text file
// is not worth asking the mesh about.
const swarmMinBytes = 16 << 20

// fetchSwarm fetches wants (commits) and their history from the device
// c, with the chunks spread over every device c's tracker names as
// holding or fetching them; advertise is where this device serves what
// it has meanwhile ("": nowhere). It returns the bytes received from each.
func (r *Repo) fetchSwarm(ctx context.Context, c *remote.Conn, wants []object.ID, advertise string, log *slog.Logger) (remote.Stats, map[string]int64, error) {
	auth, err := r.Auth()
	if err != nil {
		return remote.Stats{}, nil, err
	}
	haves, err := r.localTips()
	if err != nil {
		return remote.Stats{}, nil, err
	}
	var keys []object.ID
	for _, id := range wants {
		if !r.Store.Has(id) {
			keys = append(keys, id)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	sw := &remote.Swarm{Auth: auth, Source: c, Commits: keys, Advertise: advertise, MinBytes: swarmMinBytes, Log: log}
	st, err := remote.FetchSwarm(ctx, c, r.Store, wants, haves, sw)
	return st, sw.Received(), err
}

// DeviceFetch is one announced head to fetch (Repo.FetchDevice).
type DeviceFetch struct {
	// Addr is where Src serves (its identity pinned); "" when the commit
	// is held already and only the ref is to be set.
	Addr string
	Src  remote.DeviceID
	// Owner's Branch is at Commit: recorded as devices/<owner>/<branch>.
	Owner  remote.DeviceID
	Branch string
	Commit object.ID
	// Advertise is where this device serves its store to the swarm
	// while it fetches (a daemon's fetch address; "": nowhere).
	Advertise string
	Log       *slog.Logger
}

// FetchDevice fetches d.Commit from the device d.Src, spreading its
// chunks over the other devices that hold or are fetching it, and records
// it as devices/<owner>/<branch>.
func (r *Repo) FetchDevice(ctx context.Context, d DeviceFetch) (*FetchResult, error) {
	defer r.autoRepack(ctx)
	ref := deviceRef(d.Owner, d.Branch)
	res := &FetchResult{Remote: d.Src.String(), Refs: map[string]object.ID{ref: d.Commit}}
	if !object.ValidRefName(ref) {
		return res, fmt.Errorf("cannot record branch %q of %s", d.Branch, d.Owner.Short())
	}
	if !r.Store.Has(d.Commit) {
		auth, err := r.Auth()
		if err != nil {
			return res, err
		}
		c, err := auth.Dial(ctx, d.Addr, d.Src)
		if err != nil {
			return res, err
		}
		defer c.Close()
		if res.Stats, res.Received, err = r.fetchSwarm(ctx, c, []object.ID{d.Commit}, d.Advertise, d.Log); err != nil {
			return res, err
		}
	}
	if err := r.CheckHead(d.Commit); err != nil {
		return res, err
	}
	old, _, err := r.Refs.Get(ref)
	if err != nil || old == d.Commit {
		return res, err
	}
	return res, r.Refs.Update(ctx, ref, old, d.Commit, "sync: from "+d.Src.String())
}

// DeviceHeads returns the commits of devices/*/<branch>.
func (r *Repo) DeviceHeads(branch string) (map[string]object.ID, error) {
	refs, err := r.Refs.List()
	if err != nil {
		return nil, err
	}
	out := map[string]object.ID{}
	for ref, id := range refs {
		rest, ok := strings.CutPrefix(ref, "devices/")
		if !ok {
			continue
		}
		dev, b, ok := strings.Cut(rest, "/")
		if ok && b == branch {
			out[dev] = id
		}
	}
	return out, nil
}

// Contains reports whether commit is HEAD or in its history.
func (r *Repo) Contains(commit object.ID) (bool, error) {
	h, err := r.Head()
	if err != nil || h.ID.IsZero() {
		return false, err
	}
	if h.ID == commit {
		return true, nil
	}
	bases, err := merge.Bases(r.Store, commit, h.ID)
	if err != nil {
		return false, err
	}
	return len(bases) == 1 && bases[0] == commit, nil
}
