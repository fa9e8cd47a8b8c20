package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mesh-sync/mesh/internal/progress"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
	"github.com/mesh-sync/mesh/remote/cloud"
	"github.com/zeebo/blake3"
)

// TokenEnv is the environment variable mesh get reads an invite token
// from when SOURCE is an address: the secret stays off command lines.
const TokenEnv = "MESH_TOKEN"

// GetOptions configure Get.
type GetOptions struct {
	// Source is tls://HOST:PORT or HOST:PORT (the mesh secret from Token),
	// an invite token, or the path of a repository.
	Source string
	// Rev names a commit: a branch (artifacts/NAME), a full commit ID, or
	// an abbreviation of a branch tip's ID; Path a file or folder in it.
	Rev, Path string
	// To is where the files go: a new or empty directory.
	To string
	// Cache is the object store kept between gets (see DefaultCache).
	Cache string
	// Token is an invite token giving the mesh secret (and, when its
	// address is Source's, the device to pin).
	Token string
	// SeedListen is where this get serves the swarm ("" = 127.0.0.1:0
	// when the source is on loopback, else :0); SeedAddr what the others
	// dial (default: this machine's address towards the source).
	SeedListen, SeedAddr string
	// NoSeed: fetch only, serve nobody.
	NoSeed bool
	Log    *slog.Logger
}

// GetResult says what Get did.
type GetResult struct {
	Commit object.ID `json:"commit"`
	Path   string    `json:"path,omitempty"`
	To     string    `json:"to"`
	Files  int       `json:"files"`
	Bytes  int64     `json:"bytes"`
	// Fetched counts what came over the network (or from the source path).
	Fetched remote.Stats `json:"fetched"`
	// Received is the bytes of chunks received from each device.
	Received map[string]int64 `json:"received,omitempty"`
	// Dropped lists devices the swarm stopped using, and why.
	Dropped map[string]string `json:"dropped,omitempty"`
}

// DefaultCache is mesh get's object cache: $XDG_CACHE_HOME/mesh (or the
// system's equivalent).
func DefaultCache() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (%w); give one with --cache", err)
	}
	return filepath.Join(d, "mesh"), nil
}

// Getter is a running get: after Get returns it can keep serving what it
// fetched to the swarm (Seed) until Close.
type Getter struct {
	store  *object.Store
	auth   *remote.Auth
	src    *remote.Conn
	commit object.ID
	addr   string
	stop   context.CancelFunc
	done   chan error
}

// Close stops serving and closes the connection to the source.
func (g *Getter) Close() error {
	var err error
	if g.stop != nil {
		g.stop()
		err = <-g.done
	}
	if g.src != nil {
		g.src.Close()
	}
	if g.store != nil {
		g.store.Close()
	}
	return err
}

// Seed keeps serving the fetched commit, telling the source every few
// seconds that this device holds it all, until ctx ends.
func (g *Getter) Seed(ctx context.Context) error {
	if g.src == nil || g.addr == "" {
		return nil
	}
	for {
		if _, err := g.src.Holders(ctx, g.commit, g.addr, true); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("seed: the source is gone: %w", err)
		}
		t := time.NewTimer(remote.HolderTTL / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Get fetches one commit (or a file or folder in it) into the cache and
// writes it to o.To, every byte checked against its ID. Nothing is
// written to o.To unless all of it arrived: the files go into a temporary
// directory beside it, renamed into place at the end. The returned Getter
// (also on error) must be closed.
func Get(ctx context.Context, o GetOptions) (*GetResult, *Getter, error) {
	g := &Getter{}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	to, err := filepath.Abs(o.To)
	if err != nil {
		return nil, g, err
	}
	if err := checkTarget(to); err != nil {
		return nil, g, err
	}
	if o.Cache == "" {
		if o.Cache, err = DefaultCache(); err != nil {
			return nil, g, err
		}
	}
	if g.store, err = object.OpenStore(filepath.Join(o.Cache, "objects")); err != nil {
		return nil, g, err
	}

	// The source, and the commit.
	var (
		src    remote.Peer
		commit object.ID
	)
	if tok, ok := strings.CutPrefix(o.Source, "mesh1-"); ok {
		o.Token, o.Source = "mesh1-"+tok, ""
	}
	if o.Source == "" && o.Token != "" {
		if inv, err := remote.ParseInvite(o.Token); err == nil && isCloud(inv.Addr) {
			o.Source = inv.Addr // a token made for a bucket
		}
	}
	target, network, err := splitURL(o.Source)
	if isCloud(o.Source) {
		if o.Token == "" {
			return nil, g, fmt.Errorf("get: the mesh secret is needed to open a bucket: set %s to an invite token (mesh invite), or give the token as SOURCE", TokenEnv)
		}
		inv, err := remote.ParseInvite(o.Token)
		if err != nil {
			return nil, g, fmt.Errorf("get: the invite token: %w", err)
		}
		st, err := cloud.OpenS3(o.Source)
		if err != nil {
			return nil, g, fmt.Errorf("get: %w", err)
		}
		b, err := cloud.Open(st, inv.Mesh.Secret[:], filepath.Join(o.Cache, "cloud", cacheKey(o.Source)))
		if err != nil {
			return nil, g, err
		}
		refs, err := b.Refs(ctx)
		if err != nil {
			return nil, g, fmt.Errorf("get from %s: %w", b, err)
		}
		if commit, err = resolveAt(newestHeads(refs), o.Rev, b.String()); err != nil {
			return nil, g, err
		}
		b.Local = g.store
		src = b
	} else if err != nil {
		return nil, g, fmt.Errorf("get: %w", err)
	} else if o.Source == "" || network || looksLikeAddr(o.Source) {
		if g.auth, err = cacheAuth(o.Cache, o.Token); err != nil {
			return nil, g, err
		}
		inv, _ := remote.ParseInvite(o.Token)
		addr := target
		var pin remote.DeviceID
		if addr == "" {
			addr = inv.Addr
		}
		if addr == "" {
			return nil, g, errors.New("get: no source address: give HOST:PORT, or an invite token that has one")
		}
		if inv.Addr == addr && inv.Device != "" {
			if pin, err = remote.ParseDeviceID(inv.Device); err != nil {
				return nil, g, err
			}
		}
		if g.src, err = g.auth.Dial(ctx, addr, pin); err != nil {
			return nil, g, fmt.Errorf("get: %w", err)
		}
		src = g.src
		refs, err := g.src.ListRefs(ctx)
		if err != nil {
			return nil, g, fmt.Errorf("get from %s: %w", g.src, err)
		}
		if commit, err = resolveAt(refs, o.Rev, g.src.String()); err != nil {
			return nil, g, err
		}
	} else {
		other, err := Open(target)
		if err != nil {
			return nil, g, fmt.Errorf("get: %s is neither an address nor a repository: %w", o.Source, err)
		}
		defer other.Close()
		if commit, err = other.Resolve(o.Rev); err != nil {
			return nil, g, fmt.Errorf("get %s from %s: %w", o.Rev, other.Root, err)
		}
		src = &remote.Local{Objects: other.Store, Refs: other.Refs, Name: other.Root}
	}
	g.commit = commit

	// What to fetch: the commit's tree, or the entry at o.Path in it.
	root, err := findEntry(ctx, src, g.store, commit, o.Path)
	if err != nil {
		return nil, g, err
	}

	res := &GetResult{Commit: commit, Path: o.Path, To: to}
	var sw *remote.Swarm
	if g.src != nil {
		sw = &remote.Swarm{Auth: g.auth, Source: g.src, Commits: []object.ID{commit}, Log: log}
		if !o.NoSeed {
			if err := g.serve(o, log); err != nil {
				return nil, g, err
			}
			sw.Advertise = g.addr
		}
	}
	rt := object.TypeTree
	if root.Kind != object.KindDir {
		rt = object.TypeFile
	}
	if root.Kind == object.KindSymlink {
		return nil, g, fmt.Errorf("get: %s in %s is a symlink; get the folder that holds it", o.Path, commit.Short())
	}
	last := lastGetPath(o.Cache, o.Rev, o.Path)
	st, err := remote.FetchClosure(ctx, src, g.store, []remote.Root{{ID: root.ID, Type: rt, Old: lastGet(last)}}, sw)
	res.Fetched = st
	if sw != nil {
		res.Received, res.Dropped = sw.Received(), sw.Dropped()
	}
	if err != nil {
		return res, g, err
	}
	// The next get of the same REV and PATH (a newer build) sends its
	// chunks as deltas against this one. Only a hint: never synced.
	if err := os.MkdirAll(filepath.Dir(last), 0o755); err == nil {
		object.WriteFileAtomic(last, []byte(root.ID.String()+"\n"), 0o644, false)
	}

	// Write it out, verified again as it is read from the cache.
	tree := root.ID
	if root.Kind != object.KindDir {
		t := object.Tree{Entries: []object.Entry{root}}
		body, err := t.Encode()
		if err != nil {
			return res, g, err
		}
		b := g.store.NewBatch()
		if tree, err = b.Put(object.TypeTree, body); err != nil {
			b.Abort()
			return res, g, err
		}
		if err := b.Finish(); err != nil {
			return res, g, err
		}
	}
	changes, err := object.DiffTrees(g.store, object.ZeroID, tree)
	if err != nil {
		return res, g, err
	}
	for _, c := range changes {
		if c.New != nil && c.New.Kind != object.KindDir {
			res.Files++
			res.Bytes += c.New.Size
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(to), "."+filepath.Base(to)+".mesh-get-")
	if err != nil {
		return res, g, fmt.Errorf("get: %w", err)
	}
	meter := progress.From(ctx)
	meter.Phase("writing files")
	meter.SetTotal(int64(res.Files), res.Bytes)
	if err := worktree.Apply(ctx, tmp, changes, worktree.ApplyOptions{Store: g.store, Meter: meter}); err != nil {
		os.RemoveAll(tmp)
		return res, g, fmt.Errorf("get: writing %s: %w", to, err)
	}
	os.Remove(to) // an empty directory (checkTarget allowed only that)
	if err := os.Rename(tmp, to); err != nil {
		os.RemoveAll(tmp)
		return res, g, fmt.Errorf("get: %w", err)
	}
	os.Chmod(to, 0o755)
	return res, g, nil
}

// lastGetPath is where a cache records what its last get of rev and
// path fetched.
func lastGetPath(cache, rev, path string) string {
	key := blake3.Sum256([]byte(rev + "\x00" + path))
	return filepath.Join(cache, "last-get", hex.EncodeToString(key[:16]))
}

// lastGet is the object recorded at last (zero if none or unreadable).
func lastGet(last string) object.ID {
	b, err := os.ReadFile(last)
	if err != nil {
		return object.ZeroID
	}
	id, err := object.ParseID(strings.TrimSpace(string(b)))
	if err != nil {
		return object.ZeroID
	}
	return id
}

// checkTarget refuses a target that exists and is not an empty directory,
// and makes the target's parent if need be.
func checkTarget(to string) error {
	fi, err := os.Stat(to)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fmt.Errorf("get: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("get: %s exists and is not a directory; give a new or empty directory", to)
	}
	f, err := os.Open(to)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != io.EOF {
		return fmt.Errorf("get: %s is not empty; give a new or empty directory", to)
	}
	return nil
}

// looksLikeAddr: HOST:PORT with a numeric port, and no such path.
func looksLikeAddr(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return false
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.Atoi(port)
	return err == nil
}

// cacheAuth is the cache's own device identity, and the mesh from token.
func cacheAuth(cache, token string) (*remote.Auth, error) {
	if token == "" {
		return nil, fmt.Errorf("get: the mesh secret is needed to fetch over the network: set %s to an invite token (mesh invite), or give the token as SOURCE", TokenEnv)
	}
	inv, err := remote.ParseInvite(token)
	if err != nil {
		return nil, fmt.Errorf("get: the invite token: %w", err)
	}
	dir := filepath.Join(cache, "identity")
	id, err := remote.LoadIdentity(dir)
	if errors.Is(err, os.ErrNotExist) {
		if id, err = remote.NewIdentity(time.Now()); err == nil {
			err = id.Save(dir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("get: the cache's identity in %s: %w", dir, err)
	}
	return &remote.Auth{Identity: id, Mesh: inv.Mesh}, nil
}

// resolveAt resolves rev against a peer's refs: a full commit ID, a branch
// (heads/ may be left out), or an abbreviated ID of a branch tip.
func resolveAt(refs map[string]object.ID, rev, where string) (object.ID, error) {
	if id, err := object.ParseID(rev); err == nil {
		return id, nil
	}
	for _, name := range []string{rev, "heads/" + rev} {
		if id, ok := refs[name]; ok {
			return id, nil
		}
	}
	if len(rev) >= 4 && isHex(rev) {
		var found []object.ID
		for _, id := range refs {
			if strings.HasPrefix(id.String(), strings.ToLower(rev)) && !contains(found, id) {
				found = append(found, id)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return object.ZeroID, fmt.Errorf("get: %s is ambiguous at %s: give more digits", rev, where)
		}
	}
	var names []string
	for n := range refs {
		if b, ok := strings.CutPrefix(n, "heads/"); ok {
			names = append(names, b)
		}
	}
	sort.Strings(names)
	return object.ZeroID, fmt.Errorf("get: no branch or commit %q at %s (its branches: %s): %w", rev, where, strings.Join(names, ", "), object.ErrNotFound)
}

func contains(ids []object.ID, id object.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// getVerified fetches one metadata object from p (or reads the cache),
// checking it against its ID and type.
func getVerified(ctx context.Context, p remote.Peer, cache *object.Store, id object.ID, t object.Type) ([]byte, error) {
	if cache.Has(id) {
		got, body, err := cache.Get(id)
		if err == nil && got == t {
			return body, nil
		}
	}
	var body []byte
	err := p.Get(ctx, []object.ID{id}, func(got object.ID, r object.Raw) error {
		if got != id || r.Type != t {
			return fmt.Errorf("%s: asked for %s %s, got %s %s: %w", p, t, id.Short(), r.Type, got.Short(), object.ErrCorrupt)
		}
		b, err := cache.Expand(r)
		if err != nil {
			return fmt.Errorf("%s: %s %s: %w (%w)", p, t, id.Short(), err, object.ErrCorrupt)
		}
		if object.Hash(t, b) != id {
			return fmt.Errorf("%s: %s %s does not hash to its ID: %w", p, t, id.Short(), object.ErrCorrupt)
		}
		body = b
		return nil
	})
	if errors.Is(err, object.ErrNotFound) {
		return nil, fmt.Errorf("get: commit %s is not at %s: %w", id.Short(), p, err)
	}
	return body, err
}

// findEntry reads commit and walks p down its tree to the entry at
// path ("" is the root, a folder).
func findEntry(ctx context.Context, p remote.Peer, cache *object.Store, commit object.ID, p2 string) (object.Entry, error) {
	body, err := getVerified(ctx, p, cache, commit, object.TypeCommit)
	if err != nil {
		return object.Entry{}, err
	}
	c, err := object.DecodeCommit(body)
	if err != nil {
		return object.Entry{}, fmt.Errorf("commit %s: %w (%w)", commit.Short(), err, object.ErrCorrupt)
	}
	e := object.Entry{Name: "", Kind: object.KindDir, ID: c.Tree}
	clean := strings.Trim(path.Clean("/"+filepath.ToSlash(p2)), "/")
	if clean == "" {
		return e, nil
	}
	e.Name = path.Base(clean)
	for _, part := range strings.Split(clean, "/") {
		if e.Kind != object.KindDir {
			return e, fmt.Errorf("get: %s is not in commit %s (%s is a file): %w", p2, commit.Short(), e.Name, object.ErrNotFound)
		}
		body, err := getVerified(ctx, p, cache, e.ID, object.TypeTree)
		if err != nil {
			return e, err
		}
		t, err := object.DecodeTree(body)
		if err != nil {
			return e, fmt.Errorf("tree %s: %w (%w)", e.ID.Short(), err, object.ErrCorrupt)
		}
		next, ok := t.Find(part)
		if !ok {
			return e, fmt.Errorf("get: %s is not in commit %s: %w", p2, commit.Short(), object.ErrNotFound)
		}
		e = next
	}
	return e, nil
}

// serve starts serving the cache to the swarm.
func (g *Getter) serve(o GetOptions, log *slog.Logger) error {
	listen := o.SeedListen
	local, _, _ := net.SplitHostPort(g.src.LocalAddr())
	if listen == "" {
		listen = ":0"
		if ip := net.ParseIP(local); ip != nil && ip.IsLoopback() {
			listen = net.JoinHostPort(local, "0")
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("get: serve the swarm on %s: %w (see --seed-listen)", listen, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	g.addr = o.SeedAddr
	if g.addr == "" {
		g.addr = net.JoinHostPort(local, port)
	}
	s := &remote.Server{
		Auth:  g.auth,
		Local: &remote.Local{Objects: g.store, Refs: object.OpenRefs(filepath.Join(filepath.Dir(g.store.Dir()), "refs")), Name: "cache"},
		Log:   log,
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop, g.done = cancel, make(chan error, 1)
	go func() { g.done <- s.Serve(ctx, ln) }()
	return nil
}
