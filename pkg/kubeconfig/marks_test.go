package kubeconfig

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	api "k8s.io/client-go/tools/clientcmd/api"
)

// writeConfig writes cfg to a new file in dir and returns its path and bytes.
func writeConfig(t *testing.T, dir string, cfg *api.Config) (string, []byte) {
	t.Helper()
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// withPart is a config holding one part called "prod" of the given kind, carrying mark (nil: none).
func withPart(kind string, mark *Mark) *api.Config {
	cfg := api.NewConfig()
	switch kind {
	case "cluster":
		c := api.NewCluster()
		c.Server = "https://prod.example:6443"
		if mark != nil {
			c.Extensions[ExtensionName] = mark
		}
		cfg.Clusters["prod"] = c
	case "user":
		u := api.NewAuthInfo()
		u.Token = "secret-token"
		if mark != nil {
			u.Extensions[ExtensionName] = mark
		}
		cfg.AuthInfos["prod"] = u
	case "context":
		x := api.NewContext()
		x.Cluster, x.AuthInfo, x.Namespace = "elsewhere", "admin", "team"
		if mark != nil {
			x.Extensions[ExtensionName] = mark
		}
		cfg.Contexts["prod"] = x
	}
	return cfg
}

func TestUpdateRefusesWhatIsNotOurs(t *testing.T) {
	for _, kind := range []string{"cluster", "user", "context"} {
		for _, tc := range []struct {
			owner string
			mark  *Mark
			want  string
		}{
			{"unmarked", nil, "that mkube did not create"},
			{"another home", newMark("home-2", "prod"), "that belongs to another mkube home"},
			{"another tool's mark", &Mark{Provider: "minikube", Home: testHome, Profile: "prod"}, "that mkube did not create"},
		} {
			t.Run(kind+"/"+tc.owner, func(t *testing.T) {
				dir := t.TempDir()
				other := filepath.Join(dir, "first")
				cfg, before := writeConfig(t, dir, withPart(kind, tc.mark))
				// The part is in the second file of the list: every file counts.
				paths := []string{other, cfg}
				_, err := Update(context.Background(), paths, entry(dir, "prod"), true)
				if !errors.Is(err, ErrNotOurs) {
					t.Fatalf("Update = %v, want ErrNotOurs", err)
				}
				msg := err.Error()
				want := "kubeconfig " + cfg + " already has a " + kind + ` "prod" ` + tc.want +
					": mkube will not overwrite it; pick another profile name with -p"
				if msg != want {
					t.Errorf("message\n got %s\nwant %s", msg, want)
				}
				if after, _ := os.ReadFile(cfg); string(after) != string(before) {
					t.Errorf("file changed:\n%s", after)
				}
				if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("created %s", other)
				}
				assertNoLeftovers(t, cfg)
			})
		}
	}
}

func TestUpdateOwnMarkedEntry(t *testing.T) {
	dir := t.TempDir()
	// Our own mark as a file gives it back: runtime.Unknown JSON, not *Mark.
	cfg, _ := writeConfig(t, dir, withPart("cluster", newMark(testHome, "prod")))
	if _, err := Update(context.Background(), []string{cfg}, entry(dir, "prod"), false); err != nil {
		t.Fatalf("refused its own entry: %v", err)
	}
	c, _ := clientcmd.LoadFromFile(cfg)
	if c.Clusters["prod"].Server != "https://127.0.0.1:32771" {
		t.Errorf("server = %s", c.Clusters["prod"].Server)
	}
	for _, p := range parts(c, "prod") {
		if m := markOf(p.exts); m == nil || *m != *newMark(testHome, "prod") {
			t.Errorf("%s mark = %+v", p.kind, m)
		}
	}
}

func TestRemoveLeavesWhatIsNotOurs(t *testing.T) {
	ctx := context.Background()
	t.Run("nothing ours: byte-identical", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config")
		copyExisting(t, cfg)
		before, _ := os.ReadFile(cfg)
		left, err := Remove(ctx, []string{cfg}, "prod", testHome, "")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`context "prod" in ` + cfg, `cluster "prod" in ` + cfg}
		if strings.Join(left, "|") != strings.Join(want, "|") {
			t.Errorf("left = %q, want %q", left, want)
		}
		if after, _ := os.ReadFile(cfg); string(after) != string(before) {
			t.Errorf("file changed:\n%s", after)
		}
		assertNoLeftovers(t, cfg)
	})

	t.Run("mixed: ours removed, the rest kept", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config")
		copyExisting(t, cfg)
		// Ours everywhere, then a user hand-edits the user entry's mark to another home's.
		if _, err := Update(ctx, []string{cfg}, entry(dir, "dev"), true); err != nil {
			t.Fatal(err)
		}
		c, _ := clientcmd.LoadFromFile(cfg)
		c.AuthInfos["dev"].Extensions[ExtensionName] = newMark("home-2", "dev")
		clientcmd.WriteToFile(*c, cfg)

		left, err := Remove(ctx, []string{cfg}, "dev", testHome, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0] != `user "dev" in `+cfg {
			t.Errorf("left = %q", left)
		}
		c, _ = clientcmd.LoadFromFile(cfg)
		if c.Contexts["dev"] != nil || c.Clusters["dev"] != nil || c.AuthInfos["dev"] == nil {
			t.Errorf("removed the wrong parts: %+v", c)
		}
		if c.CurrentContext != "" {
			t.Errorf("current-context %q pointed at a removed context", c.CurrentContext)
		}
		if c.Contexts["prod"] == nil || c.AuthInfos["admin"].Token != "secret-token" {
			t.Error("other entries changed")
		}
	})

	t.Run("another home's entries are not ours to remove", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config")
		e := entry(dir, "dev")
		e.HomeID = "home-2"
		if _, err := Update(ctx, []string{cfg}, e, true); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(cfg)
		left, err := Remove(ctx, []string{cfg}, "dev", testHome, "")
		if err != nil || len(left) != 3 {
			t.Fatalf("Remove = %q, %v", left, err)
		}
		if after, _ := os.ReadFile(cfg); string(after) != string(before) {
			t.Error("file changed")
		}
	})
}

func TestCheckOwnedMatchesUpdate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := CheckOwned([]string{cfg}, "a", "home-1", ""); err != nil {
		t.Fatalf("a missing file: %v", err)
	}
	e := entry(dir, "a")
	if _, err := Update(context.Background(), []string{cfg}, e, false); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwned([]string{cfg}, "a", e.HomeID, ""); err != nil {
		t.Errorf("our own entry: %v", err)
	}
	if err := CheckOwned([]string{cfg}, "a", "another-home", ""); !errors.Is(err, ErrNotOurs) {
		t.Errorf("another home's entry: %v", err)
	}
}

// An entry an mkube from before marks wrote for this profile (its user's client certificate is
// this home's file for the profile) is adopted and marked; another client certificate is not.
func TestLegacyEntryAdopted(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	e := entry(dir, "dev")
	legacy := api.NewConfig()
	legacy.Clusters["dev"] = &api.Cluster{Server: "https://127.0.0.1:1", CertificateAuthority: e.CAFile}
	legacy.AuthInfos["dev"] = &api.AuthInfo{ClientCertificate: e.ClientCert, ClientKey: e.ClientKey}
	legacy.Contexts["dev"] = &api.Context{Cluster: "dev", AuthInfo: "dev"}
	if err := clientcmd.WriteToFile(*legacy, cfg); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwned([]string{cfg}, "dev", e.HomeID, e.ClientCert); err != nil {
		t.Fatalf("an old mkube's own entry refused: %v", err)
	}
	if err := CheckOwned([]string{cfg}, "dev", e.HomeID, filepath.Join(dir, "other.crt")); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("an entry with another certificate adopted: %v", err)
	}
	if _, err := Update(context.Background(), []string{cfg}, e, false); err != nil {
		t.Fatalf("update of an old mkube's entry: %v", err)
	}
	got, _ := clientcmd.LoadFromFile(cfg)
	if markOf(got.AuthInfos["dev"].Extensions) == nil || markOf(got.Contexts["dev"].Extensions) == nil {
		t.Error("the adopted entry was not marked")
	}
	if left, err := Remove(context.Background(), []string{cfg}, "dev", e.HomeID, e.ClientCert); err != nil || len(left) > 0 {
		t.Errorf("remove: %v %v", left, err)
	}
}
