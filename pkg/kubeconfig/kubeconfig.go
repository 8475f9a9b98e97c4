// Package kubeconfig merges a cluster's entries into the user's kubeconfig and removes them again,
// touching nothing else: other clusters, users and contexts stay as they were. Writes hold a lock
// (<file>.lock) and replace the file atomically, so a crash or a concurrent kubectl never sees or
// leaves a half-written file.
package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	api "k8s.io/client-go/tools/clientcmd/api"

	"mkube/pkg/atomicfile"
	"mkube/pkg/lockfile"
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
}

// Paths are the kubeconfig files in effect: $KUBECONFIG's list, or ~/.kube/config.
func Paths() ([]string, error) {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		var out []string
		for _, p := range filepath.SplitList(env) {
			if p != "" {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	return []string{filepath.Join(home, ".kube", "config")}, nil
}

// target picks the file to write a new entry into, like kubectl: the first file of the list that
// exists, or the last one if none does.
func target(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[len(paths)-1]
}

func load(path string) (*api.Config, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return api.NewConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

func has(cfg *api.Config, name string) bool {
	_, c := cfg.Clusters[name]
	_, x := cfg.Contexts[name]
	_, u := cfg.AuthInfos[name]
	return c || x || u
}

// Update adds or replaces the entry's cluster, user and context, in the file that already has them
// or else in the file kubectl would write to, and makes it the current context if asked.
func Update(ctx context.Context, paths []string, e Entry, setCurrent bool) (string, error) {
	file := target(paths)
	for _, p := range paths {
		cfg, err := load(p)
		if err != nil {
			return "", err
		}
		if has(cfg, e.Name) {
			file = p
			break
		}
	}
	err := modify(ctx, file, func(cfg *api.Config) error {
		cluster := api.NewCluster()
		cluster.Server = e.Server
		user := api.NewAuthInfo()
		if e.Embed {
			var err error
			if cluster.CertificateAuthorityData, err = os.ReadFile(e.CAFile); err != nil {
				return err
			}
			if user.ClientCertificateData, err = os.ReadFile(e.ClientCert); err != nil {
				return err
			}
			if user.ClientKeyData, err = os.ReadFile(e.ClientKey); err != nil {
				return err
			}
		} else {
			cluster.CertificateAuthority = e.CAFile
			user.ClientCertificate = e.ClientCert
			user.ClientKey = e.ClientKey
		}
		kctx := api.NewContext()
		kctx.Cluster, kctx.AuthInfo = e.Name, e.Name
		kctx.Namespace = e.Namespace
		if old, ok := cfg.Contexts[e.Name]; ok && old.Namespace != "" && e.Namespace == "" {
			kctx.Namespace = old.Namespace // keep a namespace the user chose for this context
		}
		cfg.Clusters[e.Name], cfg.AuthInfos[e.Name], cfg.Contexts[e.Name] = cluster, user, kctx
		if setCurrent {
			cfg.CurrentContext = e.Name
		}
		return nil
	})
	return file, err
}

// Remove deletes the named cluster, user and context from every file that has them; a current
// context pointing at it is cleared, as minikube does.
func Remove(ctx context.Context, paths []string, name string) error {
	for _, p := range paths {
		cfg, err := load(p)
		if err != nil {
			return err
		}
		if !has(cfg, name) {
			continue
		}
		err = modify(ctx, p, func(cfg *api.Config) error {
			delete(cfg.Clusters, name)
			delete(cfg.AuthInfos, name)
			delete(cfg.Contexts, name)
			if cfg.CurrentContext == name {
				cfg.CurrentContext = ""
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Server returns the server URL the kubeconfig has for name, or "" when it has none.
func Server(paths []string, name string) (string, error) {
	for _, p := range paths {
		cfg, err := load(p)
		if err != nil {
			return "", err
		}
		if c, ok := cfg.Clusters[name]; ok {
			return c.Server, nil
		}
	}
	return "", nil
}

// CurrentContext is the current context of the merged kubeconfig.
func CurrentContext(paths []string) (string, error) {
	for _, p := range paths {
		cfg, err := load(p)
		if err != nil {
			return "", err
		}
		if cfg.CurrentContext != "" {
			return cfg.CurrentContext, nil
		}
	}
	return "", nil
}

// modify reads, changes and atomically rewrites one file under its lock.
func modify(ctx context.Context, path string, change func(*api.Config) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	unlock, err := lockfile.Lock(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cfg, err := load(path) // re-read under the lock: another writer may have changed it
	if err != nil {
		return err
	}
	if err := change(cfg); err != nil {
		return err
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return atomicfile.WriteBytes(path, data, mode)
}
