package kubeconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestPathsFollowClientGo(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	list := func(ps ...string) string { return strings.Join(ps, string(os.PathListSeparator)) }
	for _, tc := range []struct {
		name string
		env  string
		want []string
	}{
		{"unset", "", []string{clientcmd.RecommendedHomeFile}},
		{"one", a, []string{a}},
		{"several, in order", list(b, a, c), []string{b, a, c}},
		{"duplicates dropped", list(a, b, a), []string{a, b}},
		{"empty entries dropped", list("", a, "", b, ""), []string{a, b}},
		{"only separators", list("", ""), []string{clientcmd.RecommendedHomeFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			got, err := Paths()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Paths = %q, want %q", got, tc.want)
			}
			// Where client-go has an answer (it keeps empty entries, and reads nothing from them),
			// it is the same.
			var fromClientGo []string
			for _, p := range clientcmd.NewDefaultClientConfigLoadingRules().Precedence {
				if p != "" {
					fromClientGo = append(fromClientGo, p)
				}
			}
			if len(fromClientGo) > 0 && strings.Join(got, "|") != strings.Join(fromClientGo, "|") {
				t.Errorf("Paths = %q, client-go's precedence %q", got, fromClientGo)
			}
		})
	}
}

func TestDefaultFileLikeKubectl(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	list := func(ps ...string) string { return strings.Join(ps, string(os.PathListSeparator)) }
	for _, tc := range []struct {
		name   string
		env    string
		exists []string
		want   string
	}{
		{"unset: the home file", "", nil, clientcmd.RecommendedHomeFile},
		{"one, missing: still it", a, nil, a},
		{"several, none exists: the last", list(a, b, c), nil, c},
		{"several: the first that exists", list(a, b, c), []string{b, c}, b},
		{"the first exists", list(a, b, c), []string{a, c}, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{a, b, c} {
				os.Remove(p)
			}
			for _, p := range tc.exists {
				os.WriteFile(p, nil, 0o600)
			}
			t.Setenv("KUBECONFIG", tc.env)
			paths, err := Paths()
			if err != nil {
				t.Fatal(err)
			}
			got := DefaultFile(paths)
			if got != tc.want {
				t.Errorf("DefaultFile = %s, want %s", got, tc.want)
			}
			if kubectl := clientcmd.NewDefaultPathOptions().GetDefaultFilename(); got != kubectl {
				t.Errorf("DefaultFile = %s, kubectl's = %s", got, kubectl)
			}
		})
	}
}

func TestSymlinkedKubeconfigStaysALink(t *testing.T) {
	dir := t.TempDir()
	dotfiles := filepath.Join(dir, "dotfiles")
	os.MkdirAll(dotfiles, 0o700)
	target := filepath.Join(dotfiles, "kubeconfig")
	copyExisting(t, target)
	os.Chmod(target, 0o640) // the user's choice of mode survives
	kube := filepath.Join(dir, ".kube")
	os.MkdirAll(kube, 0o700)
	link := filepath.Join(kube, "config")
	if err := os.Symlink("../dotfiles/kubeconfig", link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	ctx := context.Background()
	for _, step := range []string{"update", "remove"} {
		var err error
		if step == "update" {
			_, err = Update(ctx, []string{link}, entry(dir, "dev"), true)
		} else {
			_, err = Remove(ctx, []string{link}, "dev", testHome, "")
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("after %s the link was replaced by a file", step)
		}
		if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
			t.Errorf("after %s mode = %v", step, st.Mode().Perm())
		}
		c, err := clientcmd.LoadFromFile(target)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Contexts["dev"] != nil, step == "update"; got != want {
			t.Errorf("after %s: target has dev: %v", step, got)
		}
		// The lock is client-go's: beside the path as given, not the resolved one.
		assertNoLeftovers(t, link)
		assertNoLeftovers(t, target)
	}

	// A dangling link: the file is created where it points.
	os.Remove(target)
	if _, err := Update(ctx, []string{link}, entry(dir, "dev"), true); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatal("dangling link replaced by a file")
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new target: %v, %v", st, err)
	}
}
