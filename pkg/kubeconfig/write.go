package kubeconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	api "k8s.io/client-go/tools/clientcmd/api"
)

// How a write works, and why:
//
// kubectl fails at once when it meets our lock, so mkube holds it for as short a time as it can.
// Everything slow happens first and unlocked: read the files, compute the new content, write and
// sync it to a temporary file beside the target. Only then take the lock, re-read the file, and if
// it is byte for byte what the new content was computed from, rename the temporary file over it
// and release. If someone wrote in between, release and start again from a fresh read.
//
// An unlocked read can also catch kubectl mid-write (client-go truncates the file and writes it in
// place), and see a file that does not parse or that lacks an entry's tail. Errors that could be
// such a torn read are not believed until a read done under the lock says the same.

// maxAttempts bounds the optimistic retries; each failed attempt means another writer succeeded.
const maxAttempts = 50

// errChanged says the file changed between the read and the lock: compute again.
var errChanged = errors.New("kubeconfig changed while mkube was updating it")

// errUnreadable marks a file that did not parse.
var errUnreadable = errors.New("kubeconfig does not parse")

// snapshot is one kubeconfig file as read: its exact bytes, to notice a change later, and their parse.
type snapshot struct {
	path   string
	raw    []byte
	exists bool
	cfg    *api.Config
}

func read(path string) (*snapshot, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &snapshot{path: path, cfg: api.NewConfig()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w: %w", path, errUnreadable, err)
	}
	// As clientcmd.LoadFromFile: a file without a section decodes to a nil map.
	if cfg.Clusters == nil {
		cfg.Clusters = map[string]*api.Cluster{}
	}
	if cfg.AuthInfos == nil {
		cfg.AuthInfos = map[string]*api.AuthInfo{}
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]*api.Context{}
	}
	return &snapshot{path: path, raw: raw, exists: true, cfg: cfg}, nil
}

// readLocked reads path while holding its lock, so the read cannot be torn by a locking writer.
func readLocked(ctx context.Context, path string) (*snapshot, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return read(path) // nothing to tear, and no reason to create its directory for a lock
	}
	unlock, err := lock(ctx, path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return read(path)
}

// plan computes, from a snapshot of each file of the list, the new content of one of them. It
// returns that file's snapshot and its new config, or a nil config when there is nothing to write.
// It gets fresh snapshots on every attempt, so it may change their configs in place.
type plan func(snaps []*snapshot) (*snapshot, *api.Config, error)

// apply runs p against the files until its result is written over an unchanged file.
func apply(ctx context.Context, paths []string, p plan) error {
	settled := false // read under the lock
	for attempt := 1; ; attempt++ {
		snaps := make([]*snapshot, len(paths))
		var err error
		for i, path := range paths {
			if settled {
				snaps[i], err = readLocked(ctx, path)
			} else {
				snaps[i], err = read(path)
			}
			if err != nil {
				break
			}
		}
		var target *snapshot
		var cfg *api.Config
		if err == nil {
			target, cfg, err = p(snaps)
		}
		if err != nil {
			if !settled && (errors.Is(err, errUnreadable) || errors.Is(err, ErrNotOurs)) {
				settled = true
				continue
			}
			return err
		}
		if cfg == nil {
			// Nothing to do, maybe because a torn read missed what there was to do: believe it
			// once a read under the lock agrees.
			if !settled && target != nil && target.exists {
				settled = true
				continue
			}
			return nil
		}
		err = commit(ctx, target, cfg)
		if !errors.Is(err, errChanged) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("kubeconfig %s kept changing while mkube was updating it: try again", target.path)
		}
		// Back off a little, at random, so that writers that collided do not collide again.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(lockPoll)))):
		}
	}
}

// commit writes cfg over the file s was read from, unless the file has changed since.
func commit(ctx context.Context, s *snapshot, cfg *api.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	// A symlinked kubeconfig (~/.kube/config -> dotfiles/kubeconfig) is written through: replacing
	// the link with a file would silently fork the user's config from their dotfiles.
	target, err := resolve(s.path)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600) // it holds credentials
	if st, err := os.Stat(target); err == nil {
		mode = st.Mode().Perm()
	}
	for _, dir := range []string{filepath.Dir(s.path), filepath.Dir(target)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	tmp, err := stage(target, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly once renamed

	unlock, err := lock(ctx, s.path)
	if err != nil {
		return err
	}
	defer unlock()
	now, err := os.ReadFile(s.path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading kubeconfig %s: %w", s.path, err)
	}
	if exists != s.exists || !bytes.Equal(now, s.raw) {
		return errChanged
	}
	return os.Rename(tmp, target)
}

// stage writes data to a synced temporary file in target's directory (so that the rename is
// atomic) and returns its name.
func stage(target string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// resolve follows path to the file it names when it is a symlink, dangling or not.
func resolve(path string) (string, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real, nil
	}
	// Missing, or a link to something missing: follow the links by hand to where the file will be.
	p := path
	for range 64 {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", fmt.Errorf("kubeconfig %s: too many levels of symbolic links", path)
}
