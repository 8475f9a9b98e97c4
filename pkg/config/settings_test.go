package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSettings(t *testing.T) {
	h := Home(t.TempDir())
	ctx := context.Background()
	if s, err := h.Settings(); err != nil || len(s) != 0 {
		t.Fatalf("%v %v", s, err)
	}
	if err := h.SetSetting(ctx, "driver", "kvm2", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSetting(ctx, "cpus", "4", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSetting(ctx, "nosuch", "1", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown key: %v", err)
	}
	s, _ := h.Settings()
	if got := strings.Join(SortedSettings(s), "\n"); got != "- cpus: 4\n- driver: kvm2" {
		t.Errorf("view: %q", got)
	}
	h.SetSetting(ctx, "cpus", "", nil)
	if s, _ := h.Settings(); len(s) != 1 {
		t.Errorf("unset: %v", s)
	}
}

func TestConcurrentSetsKeepEveryKey(t *testing.T) {
	h := Home(t.TempDir())
	var wg sync.WaitGroup
	keys := SettingKeys[1:]
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.SetSetting(context.Background(), k, fmt.Sprint(i+1), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, err := h.Settings()
	if err != nil || len(s) != len(keys) {
		t.Fatalf("after concurrent sets: %v, %v (want %d keys)", s, err, len(keys))
	}
	if st, err := os.Stat(filepath.Join(string(h), "config", "config.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("settings mode: %v %v", st, err)
	}
	if err := h.SetSetting(context.Background(), "profile", "../..", nil); err == nil {
		t.Error("a hostile default profile was saved")
	}
}
