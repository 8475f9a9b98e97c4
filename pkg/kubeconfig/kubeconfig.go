// Package kubeconfig merges a cluster's entries into the user's kubeconfig and removes them again,
// touching nothing else: other clusters, users and contexts stay as they were, and entries mkube did
// not write (by their "mkube" extension, see Mark) are neither overwritten nor removed.
//
// It finds the files as kubectl does and locks them as client-go does (<file>.lock, created
// exclusively, removed on unlock), holding the lock only for a final check and a rename, so that a
// concurrent kubectl, which gives up at once on a held lock, almost never meets it. Files are
// replaced atomically, through symlinks, keeping their mode.
package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	api "k8s.io/client-go/tools/clientcmd/api"
)

// Entry is one cluster as a kubeconfig names it: a cluster, a user and a context, all called Name.
type Entry struct {
	Name       string
	Server     string // https://127.0.0.1:PORT
	CAFile     string
	ClientCert string
	ClientKey  string
	Embed      bool // embed certificate data instead of referring to files
	Namespace  string
	HomeID     string // the mkube home's ID, recorded in the entry's mark
}

// Paths are the kubeconfig files in effect, in precedence order, by client-go's own rules (so the
// same as kubectl's on every OS): $KUBECONFIG split by the OS's list separator, duplicates and
// empty entries dropped, or else clientcmd.RecommendedHomeFile (~/.kube/config, with client-go's
// idea of home on Windows).
func Paths() ([]string, error) {
	po := clientcmd.NewDefaultPathOptions()
	var out []string
	for _, p := range po.GetLoadingPrecedence() {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		// $KUBECONFIG held only separators. kubectl would then read nothing and fail to write;
		// the home file is the useful reading.
		out = []string{po.GlobalFile}
	}
	if out[0] == po.GlobalFile && !filepath.IsAbs(po.GlobalFile) {
		// client-go found no home directory and fell back to a path relative to the working one.
		return nil, fmt.Errorf("cannot tell where your home directory is, so not where the kubeconfig is (%s)", po.GlobalFile)
	}
	return out, nil
}

// DefaultFile is the file of the list a new entry goes to, as kubectl's
// PathOptions.GetDefaultFilename picks it: the only one; else the first that exists; else the last.
// It is "" for an empty list.
func DefaultFile(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	exists := make([]bool, len(paths))
	for i, p := range paths {
		_, err := os.Stat(p)
		exists[i] = err == nil
	}
	return paths[defaultIndex(exists)]
}

func defaultIndex(exists []bool) int {
	for i, e := range exists {
		if e {
			return i
		}
	}
	return len(exists) - 1 // covers the single file too
}

func has(cfg *api.Config, name string) bool {
	_, c := cfg.Clusters[name]
	_, x := cfg.Contexts[name]
	_, u := cfg.AuthInfos[name]
	return c || x || u
}

// part is one of an entry's cluster, user and context, with its extensions (where a mark is).
type part struct {
	kind string // as messages name it: "context", "cluster", "user"
	exts map[string]runtime.Object
}

// parts lists the parts named name that cfg has.
func parts(cfg *api.Config, name string) []part {
	var out []part
	if x, ok := cfg.Contexts[name]; ok {
		out = append(out, part{"context", x.Extensions})
	}
	if c, ok := cfg.Clusters[name]; ok {
		out = append(out, part{"cluster", c.Extensions})
	}
	if u, ok := cfg.AuthInfos[name]; ok {
		out = append(out, part{"user", u.Extensions})
	}
	return out
}

// Update adds or replaces the entry's cluster, user and context, in the first file that already
// has one of them or else in the file kubectl would write to, marks them as this home's and
// profile's, and makes the context current if asked. It returns the file written. It refuses, with
// an error wrapping ErrNotOurs, when any file of the list has a cluster, user or context of that
// name that this home and profile did not write, and then leaves every file as it was.
func Update(ctx context.Context, paths []string, e Entry, setCurrent bool) (string, error) {
	if len(paths) == 0 {
		return "", errors.New("no kubeconfig file to write to")
	}
	// Read certificates now, not on every attempt, and never under the lock.
	var ca, cert, key []byte
	if e.Embed {
		var err error
		if ca, err = os.ReadFile(e.CAFile); err != nil {
			return "", err
		}
		if cert, err = os.ReadFile(e.ClientCert); err != nil {
			return "", err
		}
		if key, err = os.ReadFile(e.ClientKey); err != nil {
			return "", err
		}
	}
	var file string
	err := apply(ctx, paths, func(snaps []*snapshot) (*snapshot, *api.Config, error) {
		var target *snapshot
		for _, s := range snaps {
			legacy := legacyOurs(s.cfg, e.Name, e.ClientCert)
			for _, p := range parts(s.cfg, e.Name) {
				if why := whose(p.exts, e.HomeID, e.Name); why != "" && !(legacy && markOf(p.exts) == nil) {
					return nil, nil, &notOursError{file: s.path, kind: p.kind, name: e.Name, why: why}
				}
			}
			if target == nil && has(s.cfg, e.Name) {
				target = s
			}
		}
		if target == nil {
			exists := make([]bool, len(snaps))
			for i, s := range snaps {
				exists[i] = s.exists
			}
			target = snaps[defaultIndex(exists)]
		}
		cfg := target.cfg
		mark := newMark(e.HomeID, e.Name)

		cluster := api.NewCluster()
		cluster.Server = e.Server
		user := api.NewAuthInfo()
		if e.Embed {
			cluster.CertificateAuthorityData = ca
			user.ClientCertificateData, user.ClientKeyData = cert, key
		} else {
			cluster.CertificateAuthority = e.CAFile
			user.ClientCertificate, user.ClientKey = e.ClientCert, e.ClientKey
		}
		kctx := api.NewContext()
		kctx.Cluster, kctx.AuthInfo = e.Name, e.Name
		kctx.Namespace = e.Namespace
		if old, ok := cfg.Contexts[e.Name]; ok && old.Namespace != "" && e.Namespace == "" {
			kctx.Namespace = old.Namespace // keep a namespace the user chose for this context
		}
		// Keep extensions others added to our entries; ours is rewritten.
		if old, ok := cfg.Clusters[e.Name]; ok {
			keepOthers(cluster.Extensions, old.Extensions)
		}
		if old, ok := cfg.AuthInfos[e.Name]; ok {
			keepOthers(user.Extensions, old.Extensions)
		}
		if old, ok := cfg.Contexts[e.Name]; ok {
			keepOthers(kctx.Extensions, old.Extensions)
		}
		cluster.Extensions[ExtensionName] = mark
		user.Extensions[ExtensionName] = mark.DeepCopyObject()
		kctx.Extensions[ExtensionName] = mark.DeepCopyObject()

		cfg.Clusters[e.Name], cfg.AuthInfos[e.Name], cfg.Contexts[e.Name] = cluster, user, kctx
		if setCurrent {
			cfg.CurrentContext = e.Name
		}
		file = target.path
		return target, cfg, nil
	})
	if err != nil {
		return "", err
	}
	return file, nil
}

// keepOthers copies the extensions in old other than mkube's into exts.
func keepOthers(exts, old map[string]runtime.Object) {
	for k, v := range old {
		if k != ExtensionName {
			exts[k] = v
		}
	}
}

// Remove deletes the cluster, user and context called name that carry the mark of homeID and
// profile name, from every file that has them; a current context pointing at a removed context is
// cleared, as minikube does. Parts of that name without the mark are left alone, and returned as
// `context "prod" in /home/u/.kube/config` for the caller to tell the user.
func Remove(ctx context.Context, paths []string, name, homeID, clientCert string) ([]string, error) {
	var left []string
	for _, path := range paths {
		var kept []string
		err := apply(ctx, []string{path}, func(snaps []*snapshot) (*snapshot, *api.Config, error) {
			s := snaps[0]
			cfg := s.cfg
			kept = kept[:0] // a retry starts over
			removed := false
			legacy := legacyOurs(cfg, name, clientCert)
			for _, p := range parts(cfg, name) {
				if whose(p.exts, homeID, name) != "" && !(legacy && markOf(p.exts) == nil) {
					kept = append(kept, fmt.Sprintf("%s %q in %s", p.kind, name, path))
					continue
				}
				removed = true
				switch p.kind {
				case "context":
					delete(cfg.Contexts, name)
					if cfg.CurrentContext == name {
						cfg.CurrentContext = ""
					}
				case "cluster":
					delete(cfg.Clusters, name)
				case "user":
					delete(cfg.AuthInfos, name)
				}
			}
			if !removed {
				return s, nil, nil
			}
			return s, cfg, nil
		})
		if err != nil {
			return left, err
		}
		left = append(left, kept...)
	}
	return left, nil
}

// Server returns the server URL the kubeconfig has for name, or "" when it has none. It reads
// without the lock, as kubectl does.
func Server(paths []string, name string) (string, error) {
	for _, p := range paths {
		s, err := read(p)
		if err != nil {
			return "", err
		}
		if c, ok := s.cfg.Clusters[name]; ok {
			return c.Server, nil
		}
	}
	return "", nil
}

// CurrentContext is the current context of the merged kubeconfig: the first file's that sets one.
func CurrentContext(paths []string) (string, error) {
	for _, p := range paths {
		s, err := read(p)
		if err != nil {
			return "", err
		}
		if s.cfg.CurrentContext != "" {
			return s.cfg.CurrentContext, nil
		}
	}
	return "", nil
}
