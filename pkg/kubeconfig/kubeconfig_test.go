package kubeconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"mkube/internal/golden"
)

// testHome is the home ID the tests' entries are marked with.
const testHome = "home-1"

func entry(dir, name string) Entry {
	return Entry{Name: name, Server: "https://127.0.0.1:32771", CAFile: filepath.Join(dir, "ca.crt"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"), HomeID: testHome}
}

func copyExisting(t *testing.T, dst string) {
	raw, err := os.ReadFile("testdata/existing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(dst), 0o700)
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateAndRemoveKeepOtherEntries(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	copyExisting(t, cfg)
	ctx := context.Background()
	e := entry("/home/u/.mkube/profiles/mkube", "mkube")
	file, err := Update(ctx, []string{cfg}, e, true)
	if err != nil || file != cfg {
		t.Fatalf("Update = %s, %v", file, err)
	}
	got, _ := os.ReadFile(cfg)
	golden.Check(t, "merged.golden", got)
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", st.Mode().Perm())
	}

	// Updating again with a new port replaces our entry only; --keep-context keeps the current one.
	e.Server = "https://127.0.0.1:40000"
	if _, err := Update(ctx, []string{cfg}, e, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := Server([]string{cfg}, "mkube"); s != e.Server {
		t.Errorf("server = %s", s)
	}

	if left, err := Remove(ctx, []string{cfg}, "mkube", testHome, ""); err != nil || len(left) > 0 {
		t.Fatalf("Remove = %v, %v", left, err)
	}
	after, _ := clientcmd.LoadFromFile(cfg)
	before, _ := clientcmd.LoadFromFile("testdata/existing.yaml")
	if len(after.Clusters) != 1 || after.Clusters["prod"].Server != before.Clusters["prod"].Server ||
		after.AuthInfos["admin"].Token != "secret-token" || after.Contexts["prod"].Namespace != "team" {
		t.Errorf("other entries changed: %+v", after)
	}
	// The current context was mkube's, so it is cleared, as minikube does.
	if after.CurrentContext != "" {
		t.Errorf("current-context = %q", after.CurrentContext)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".config.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestEmbedCerts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "client.crt", "client.key"} {
		os.WriteFile(filepath.Join(dir, f), []byte("DATA-"+f), 0o600)
	}
	cfg := filepath.Join(dir, "kube", "config")
	e := entry(dir, "p1")
	e.Embed = true
	if _, err := Update(context.Background(), []string{cfg}, e, true); err != nil {
		t.Fatal(err)
	}
	c, err := clientcmd.LoadFromFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Clusters["p1"].CertificateAuthorityData) != "DATA-ca.crt" || string(c.AuthInfos["p1"].ClientKeyData) != "DATA-client.key" ||
		c.Clusters["p1"].CertificateAuthority != "" {
		t.Errorf("not embedded: %+v %+v", c.Clusters["p1"], c.AuthInfos["p1"])
	}
	if c.CurrentContext != "p1" {
		t.Errorf("current = %s", c.CurrentContext)
	}
}

func TestMultiplePaths(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	copyExisting(t, b)
	ctx := context.Background()
	// a does not exist, b does: kubectl writes new entries to the first file that exists.
	file, err := Update(ctx, []string{a, b}, entry(dir, "one"), false)
	if err != nil || file != b {
		t.Fatalf("Update wrote %s, %v; want %s", file, err, b)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("created %s", a)
	}
	// An entry already in a later file is updated where it is.
	os.WriteFile(a, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
	if file, _ := Update(ctx, []string{a, b}, entry(dir, "one"), false); file != b {
		t.Errorf("updated in %s, want %s", file, b)
	}
	// None exists: the last one, like kubectl.
	x, y := filepath.Join(dir, "x"), filepath.Join(dir, "y")
	if file, _ := Update(ctx, []string{x, y}, entry(dir, "two"), false); file != y {
		t.Errorf("wrote %s, want %s", file, y)
	}
	t.Setenv("KUBECONFIG", a+string(os.PathListSeparator)+b)
	ps, _ := Paths()
	if strings.Join(ps, ",") != a+","+b {
		t.Errorf("Paths = %v", ps)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := Update(context.Background(), []string{cfg}, entry("/x", "p"+string(rune('a'+i))), false); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	c, err := clientcmd.LoadFromFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Contexts) != 20 {
		t.Errorf("contexts = %d, want 20", len(c.Contexts))
	}
}

func TestCorruptKubeconfigIsNotOverwritten(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("{{{ not yaml"), 0o600)
	if _, err := Update(context.Background(), []string{cfg}, entry("/x", "p"), true); err == nil {
		t.Fatal("updated a kubeconfig it cannot read")
	}
	if raw, _ := os.ReadFile(cfg); string(raw) != "{{{ not yaml" {
		t.Error("corrupt kubeconfig was overwritten")
	}
}
