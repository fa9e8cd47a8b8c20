package worktree

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/mesh-sync/mesh/object"
	"golang.org/x/text/unicode/norm"
)

// ProbeFolder finds out what the folder dir (on the working tree's
// filesystem, writable) can hold, by trying: a file written in lower case
// that is found in upper case means case-insensitive; a name written NFC
// that is listed NFD, or found by its NFD form, means normalizing; a name
// with a colon the filesystem refuses (or Windows) means Windows's rules.
// It leaves nothing behind.
func ProbeFolder(dir string) (FolderRules, error) {
	var r FolderRules
	tag := "mesh-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())
	made := []string{}
	defer func() {
		for _, p := range made {
			os.Remove(p)
		}
	}()
	create := func(name string) error {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		made = append(made, p)
		return f.Close()
	}
	if err := create(tag + "-a"); err != nil {
		return r, fmt.Errorf("probe %s: %w", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, tag+"-A")); err == nil {
		r.CaseInsensitive = true
	}
	nfc := tag + "-\u00e9"
	nfd := norm.NFD.String(nfc)
	if err := create(nfc); err != nil {
		return r, fmt.Errorf("probe %s: %w", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, nfd)); err == nil {
		r.Normalizing = true
	} else if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if e.Name() == nfd {
				r.Normalizing = true
			}
		}
	}
	if err := os.Symlink(tag+"-a", filepath.Join(dir, tag+"-link")); err != nil {
		r.NoSymlinks = true
	} else {
		made = append(made, filepath.Join(dir, tag+"-link"))
	}
	if runtime.GOOS == "windows" {
		r.WindowsNames, r.NoExecBits = true, true
		return r, nil
	}
	if err := create(tag + "-x:y"); err != nil {
		r.WindowsNames = true // vfat, exfat or ntfs mounted here
	}
	// A file whose exec bit does not follow chmod (FAT mounted with one
	// mode for all) has none of its own.
	p := filepath.Join(dir, tag+"-a")
	if os.Chmod(p, 0o755) == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o100 == 0 {
			r.NoExecBits = true
		}
		if os.Chmod(p, 0o644) == nil {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o100 != 0 {
				r.NoExecBits = true
			}
		}
	}
	return r, nil
}

// folderFile is the cache of a working tree's FolderRules, in .mesh.
const folderFile = "folder.json"

type folderRecord struct {
	Version int         `json:"version"`
	Rules   FolderRules `json:"rules"`
}

// LoadFolderRules returns the FolderRules of the working tree whose .mesh
// is meta, probed once (in scratch, a directory of meta) and then kept in
// meta/folder.json. Where the probe cannot run, it assumes what the OS's
// usual filesystem does (NTFS, APFS) and says why in err, caching nothing.
func LoadFolderRules(meta, scratch string) (FolderRules, error) {
	p := filepath.Join(meta, folderFile)
	if b, err := os.ReadFile(p); err == nil {
		var rec folderRecord
		if json.Unmarshal(b, &rec) == nil && rec.Version == 1 {
			return rec.Rules, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return osDefaultRules(), err
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return osDefaultRules(), err
	}
	r, err := ProbeFolder(scratch)
	if err != nil {
		return osDefaultRules(), err
	}
	return r, SaveFolderRules(meta, r)
}

// SaveFolderRules records r as the rules of the working tree whose .mesh
// is meta (what LoadFolderRules finds next).
func SaveFolderRules(meta string, r FolderRules) error {
	b, _ := json.Marshal(folderRecord{Version: 1, Rules: r})
	return object.WriteFileAtomic(filepath.Join(meta, folderFile), append(b, '\n'), 0o644, true)
}

func osDefaultRules() FolderRules {
	switch runtime.GOOS {
	case "windows":
		return FolderRules{CaseInsensitive: true, WindowsNames: true, NoExecBits: true, NoSymlinks: true}
	case "darwin", "ios":
		return FolderRules{CaseInsensitive: true, Normalizing: true}
	}
	return FolderRules{}
}
