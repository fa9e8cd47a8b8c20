package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mesh-sync/mesh/internal/ignore"
	"github.com/mesh-sync/mesh/internal/worktree"
	"github.com/mesh-sync/mesh/object"
	"github.com/mesh-sync/mesh/remote"
)

// Error kinds the CLI maps to messages and exit codes.
var (
	ErrNotRepo      = errors.New("not a mesh repository")
	ErrExists       = errors.New("already a mesh repository")
	ErrUnknownRev   = errors.New("unknown revision")
	ErrUncommitted  = errors.New("uncommitted changes in the way")
	ErrNoCommits    = errors.New("no commits yet")
	ErrIsDirectory  = errors.New("is a directory")
	ErrNotDirectory = errors.New("not a directory")
)

// ConfigVersion is the version of .mesh/config this mesh writes.
const ConfigVersion = 1

// Config is .mesh/config.
type Config struct {
	Version  int             `json:"version"`
	Chunking object.Chunking `json:"chunking"`
	// Device names this device in the commits it makes: its device ID,
	// derived from the key in .mesh/identity.
	Device string `json:"device"`
	// Name is what this device goes by for people (mesh config name):
	// its commits carry it, and conflict copies of its versions use it.
	Name string `json:"name,omitempty"`
	// User is the author of this device's commits (mesh config
	// user.name, user.email); $MESH_AUTHOR overrides it.
	User UserConfig `json:"user,omitzero"`
	// Author is the older single author setting, used when User is unset.
	Author string `json:"author,omitempty"`
	// Mesh is the public ID of the mesh this repository belongs to; its
	// secret is in .mesh/secret, readable by the owner only.
	Mesh string `json:"mesh,omitempty"`
	// Remotes are the other repositories and devices this one fetches
	// from and pushes to, by name.
	Remotes map[string]RemoteConfig `json:"remotes,omitempty"`
}

// RemoteConfig is one remote: a path to another repository, or
// tls://HOST:PORT of a device running mesh serve (and, when known, the
// device ID expected there).
type RemoteConfig struct {
	URL    string `json:"url"`
	Device string `json:"device,omitempty"`
	// Gossip is the gossip address of that device when it runs a daemon
	// (from the invite token): mesh sync and daemon join the mesh there.
	Gossip string `json:"gossip,omitempty"`
}

// Repo is an open repository.
type Repo struct {
	Root   string // the working tree
	Meta   string // Root/.mesh
	Config Config
	Store  *object.Store
	Refs   *object.Refs

	chunker *object.Chunker
	// Now is the clock; tests replace it.
	Now func() time.Time

	validMu    sync.Mutex
	validTrees map[object.ID]bool // trees CheckHead passed

	rulesOnce sync.Once
	rules     worktree.FolderRules // what the folder can hold (folderRules)
}

// Init creates a repository in dir (created if missing): a new mesh, or,
// given an invite, a new device of the mesh it names.
func Init(dir string, inv *remote.Invite) (*Repo, error) {
	return InitNested(dir, inv, true)
}

// ErrInsideRepo is the kind of error for a repository that would be made
// inside another one's folder.
var ErrInsideRepo = errors.New("inside another mesh repository")

// InitNested is Init that, unless nested, refuses a dir inside another
// repository's folder: the outer one would commit the inner one's files
// (mesh init --nested means it).
func InitNested(dir string, inv *remote.Invite, nested bool) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	meta := filepath.Join(abs, ignore.MetaDir)
	if _, err := os.Stat(filepath.Join(meta, "config")); err == nil {
		return nil, fmt.Errorf("%s: %w", abs, ErrExists)
	}
	if !nested {
		if outer, err := Find(filepath.Dir(abs)); err == nil {
			return nil, fmt.Errorf("%s is %w at %s, which would then commit its files; give mesh init --nested to mean it, or choose a folder outside", abs, ErrInsideRepo, outer)
		}
	}
	if err := os.MkdirAll(meta, 0o755); err != nil {
		return nil, fmt.Errorf("init %s: %w", abs, err)
	}
	// The device's identity: its ID, derived from the key, names this
	// device in every commit it makes.
	ident, err := remote.NewIdentity(time.Now())
	if err != nil {
		return nil, err
	}
	if err := ident.Save(filepath.Join(meta, "identity")); err != nil {
		return nil, err
	}
	cfg := Config{Version: ConfigVersion, Chunking: object.DefaultChunking(), Device: ident.ID.String(), Name: DefaultDeviceName()}
	var m remote.Mesh
	if inv != nil {
		m, cfg.Chunking = inv.Mesh, inv.Chunking
	} else if m, err = remote.NewMesh(); err != nil {
		return nil, err
	}
	if err := saveSecret(meta, m); err != nil {
		return nil, err
	}
	cfg.Mesh = m.ID()
	for _, d := range []string{"objects", "refs/heads", "logs"} {
		if err := os.MkdirAll(filepath.Join(meta, filepath.FromSlash(d)), 0o755); err != nil {
			return nil, fmt.Errorf("init %s: %w", abs, err)
		}
	}
	if err := object.WriteFileAtomic(filepath.Join(meta, "HEAD"), []byte("ref: heads/main\n"), 0o644, true); err != nil {
		return nil, err
	}
	// The config is written last: its presence is what makes a repository.
	if err := writeConfig(meta, cfg); err != nil {
		return nil, err
	}
	return Open(abs)
}

func writeConfig(meta string, cfg Config) error {
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return object.WriteFileAtomic(filepath.Join(meta, "config"), append(b, '\n'), 0o644, true)
}

const secretFile = "secret"

func saveSecret(meta string, m remote.Mesh) error {
	b, _ := m.MarshalText()
	return object.WriteFileAtomic(filepath.Join(meta, secretFile), append(b, '\n'), 0o600, true)
}

// ErrNoMesh is returned when a repository has no mesh secret.
var ErrNoMesh = errors.New("no mesh secret")

// Mesh reads the mesh secret.
func (r *Repo) Mesh() (remote.Mesh, error) {
	var m remote.Mesh
	p := filepath.Join(r.Meta, secretFile)
	b, err := os.ReadFile(p)
	if isNotExist(err) {
		return m, fmt.Errorf("%s is missing: %w; this repository was made before meshes had secrets: join a mesh with mesh join", p, ErrNoMesh)
	}
	if err != nil {
		return m, err
	}
	if err := m.UnmarshalText(b); err != nil {
		return m, fmt.Errorf("%s: %w", p, err)
	}
	if r.Config.Mesh != "" && m.ID() != r.Config.Mesh {
		return m, fmt.Errorf("%s belongs to mesh %s, but the config says %s: %w", p, m.ID(), r.Config.Mesh, ErrNoMesh)
	}
	return m, nil
}

// Auth is what this device presents to the others: identity and mesh.
func (r *Repo) Auth() (*remote.Auth, error) {
	id, err := r.Identity()
	if err != nil {
		return nil, err
	}
	m, err := r.Mesh()
	if err != nil {
		return nil, err
	}
	return &remote.Auth{Identity: id, Mesh: m}, nil
}

// Find returns the root of the repository containing dir.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		if _, err := os.Stat(filepath.Join(d, ignore.MetaDir, "config")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s (or any parent): %w; run mesh init to create one", abs, ErrNotRepo)
		}
		d = parent
	}
}

// Open opens the repository containing dir.
func Open(dir string) (*Repo, error) {
	root, err := Find(dir)
	if err != nil {
		return nil, err
	}
	meta := filepath.Join(root, ignore.MetaDir)
	b, err := os.ReadFile(filepath.Join(meta, "config"))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(meta, "config"), err)
	}
	if cfg.Version != ConfigVersion {
		return nil, fmt.Errorf("%s has version %d; this mesh reads version %d", filepath.Join(meta, "config"), cfg.Version, ConfigVersion)
	}
	ch, err := object.NewChunker(cfg.Chunking, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(meta, "config"), err)
	}
	st, err := object.OpenStore(filepath.Join(meta, "objects"))
	if err != nil {
		return nil, err
	}
	r := &Repo{Root: root, Meta: meta, Config: cfg, Store: st, Refs: object.OpenRefs(meta), chunker: ch, Now: time.Now}
	if _, err := os.Stat(filepath.Join(meta, opFile)); err == nil || len(st.PacksWithoutIndex()) > 0 {
		// A killed process left an update of the working tree half
		// done, or a pack without its index: finish it now, before
		// anything reads them, unless a live process holds the lock (the
		// work is its own, under way).
		if l, _, err := object.TryLock(r.lockPath()); err == nil {
			r.finishInterrupted(context.Background()) // an error shows again at the next Lock
			l.Release()
		}
	}
	return r, nil
}

// Close releases the store.
func (r *Repo) Close() error { return r.Store.Close() }

// LockWait is how long a command waits for another mesh process that holds
// the repository lock.
var LockWait = 60 * time.Second

// autoRepack merges the store's smallest packs when their sizes no longer
// form a geometric progression (object.Store.AutoRepack): cheap, bounded,
// skipped when another process is repacking, and run after the repository
// lock is released so that it never holds up a commit. Its errors are
// left for fsck to report: the store is consistent either way.
func (r *Repo) autoRepack(ctx context.Context) {
	if ctx.Err() == nil {
		_, _ = r.Store.AutoRepack(ctx)
	}
}

// Lock takes the repository lock that serialises commands which write,
// then finishes an update of the working tree that a killed process left
// recorded (see intent.go), so every writer starts from a whole tree.
func (r *Repo) Lock(ctx context.Context) (*object.Lock, error) {
	l, err := r.lockOnly(ctx, LockWait)
	if err != nil {
		return nil, err
	}
	if err := r.finishInterrupted(ctx); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// lockOnly takes the repository lock, waiting up to wait.
func (r *Repo) lockOnly(ctx context.Context, wait time.Duration) (*object.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return object.AcquireLock(ctx, r.lockPath())
}

func (r *Repo) lockPath() string { return filepath.Join(r.Meta, "lock") }

func (r *Repo) indexPath() string { return filepath.Join(r.Meta, "index") }

// Identity loads this device's key and certificate.
func (r *Repo) Identity() (*remote.Identity, error) {
	return remote.LoadIdentity(filepath.Join(r.Meta, "identity"))
}

// Head returns what HEAD points at.
func (r *Repo) Head() (object.Head, error) { return r.Refs.Head() }

// headTree returns the tree of HEAD's commit, or zero for an unborn branch.
func (r *Repo) headTree() (object.Head, object.ID, error) {
	h, err := r.Refs.Head()
	if err != nil {
		return h, object.ZeroID, err
	}
	if h.ID.IsZero() {
		return h, object.ZeroID, nil
	}
	c, err := r.Store.ReadCommit(h.ID)
	if err != nil {
		return h, object.ZeroID, err
	}
	return h, c.Tree, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// RelPath turns a path given on the command line (relative to the current
// directory, or absolute) into a slash-separated path from the root.
func (r *Repo) RelPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r.Root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the repository at %s", p, r.Root)
	}
	if rel == "." {
		return "", nil
	}
	rel = filepath.ToSlash(rel)
	if n := r.names(r.Store); n != nil {
		// A name as the folder shows it (escaped, a clash name, NFD from
		// a Mac's completion) is the path history has.
		_, head, err := r.headTree()
		if err != nil {
			return "", err
		}
		return n.HistoryPath(head, rel)
	}
	return rel, nil
}
