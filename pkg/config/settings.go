package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"mkube/pkg/atomicfile"
	"mkube/pkg/lockfile"
)

// SettingKeys are what `mkube config set` accepts besides the drivers' options: defaults for
// `mkube start` flags of the same names, kept in $MKUBE_HOME/config/config.json as minikube keeps
// its own.
var SettingKeys = []string{"profile", "driver", "cpus", "memory", "disk-size", "kubernetes-version", "image-repository", "binary-mirror", "iso-url", "mirror"}

func (h Home) settingsPath() string { return h.path("config", "config.json") }

// Settings reads the saved settings (none is an empty map).
func (h Home) Settings() (map[string]string, error) {
	raw, err := os.ReadFile(h.settingsPath())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	s := map[string]string{}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", h.settingsPath(), err)
	}
	return s, nil
}

// CheckSettingKey says whether key is a setting: one of SettingKeys or of more (the drivers'
// option names).
func CheckSettingKey(key string, more []string) error {
	keys := append(slices.Clone(SettingKeys), more...)
	if slices.Contains(keys, key) {
		return nil
	}
	return fmt.Errorf("property name %q not found (settings: %s)", key, strings.Join(keys, ", "))
}

// SetSetting saves key=value; an empty value removes the key. Concurrent `mkube config set`s
// each keep their key: the read-modify-write holds a lock.
func (h Home) SetSetting(ctx context.Context, key, value string, more []string) error {
	if err := CheckSettingKey(key, more); err != nil {
		return err
	}
	if key == "profile" && value != "" {
		if err := ValidateProfileName(value); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(h.path("config"), 0o700); err != nil {
		return err
	}
	unlock, err := lockfile.Lock(ctx, h.settingsPath()+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := h.Settings()
	if err != nil {
		return err
	}
	if value == "" {
		delete(s, key)
	} else {
		s[key] = value
	}
	raw, err := json.MarshalIndent(s, "", "    ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(h.settingsPath(), append(raw, '\n'), 0o600)
}

// SortedSettings lists settings as "key: value" lines, sorted, as `minikube config view` does.
func SortedSettings(s map[string]string) []string {
	var out []string
	for k, v := range s {
		out = append(out, fmt.Sprintf("- %s: %s", k, v))
	}
	sort.Strings(out)
	return out
}
