package driver

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	e := Entry{Name: "kvm2", Options: []Option{
		{Name: "kvm-qemu-uri", Default: "qemu:///system", Validate: func(v string) error {
			if !strings.HasPrefix(v, "qemu") {
				return errors.New("not a QEMU URI")
			}
			return nil
		}},
		{Name: "kvm-accel", Default: "auto", Choices: []string{"auto", "kvm", "tcg"}},
	}}
	tests := []struct {
		name    string
		values  map[string]string
		want    Settings
		wantErr string
	}{
		{"defaults", nil, Settings{"kvm-qemu-uri": "qemu:///system", "kvm-accel": "auto"}, ""},
		{"given", map[string]string{"kvm-accel": "tcg", "kvm-qemu-uri": "qemu+ssh://h/system"},
			Settings{"kvm-qemu-uri": "qemu+ssh://h/system", "kvm-accel": "tcg"}, ""},
		{"empty is the default", map[string]string{"kvm-accel": ""}, Settings{"kvm-qemu-uri": "qemu:///system", "kvm-accel": "auto"}, ""},
		{"other drivers' options ignored", map[string]string{"hyperv-virtual-switch": "x"}, Settings{"kvm-qemu-uri": "qemu:///system", "kvm-accel": "auto"}, ""},
		{"not a choice", map[string]string{"kvm-accel": "fast"}, nil, `--kvm-accel="fast": use one of [auto kvm tcg]`},
		{"invalid", map[string]string{"kvm-qemu-uri": "http://x"}, nil, "not a QEMU URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.Settings(tt.values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestRegistryOptionsAndChooseWithSettings(t *testing.T) {
	t.Parallel()
	var sawURI string
	kvm := Entry{Name: "kvm2", Priority: 80, Supported: true, Options: []Option{{Name: "kvm-qemu-uri", Default: "qemu:///system"}, {Name: "kvm-accel", Default: "auto"}},
		Health: func(_ context.Context, s Settings) Health {
			sawURI = s["kvm-qemu-uri"]
			return Health{Installed: true, Running: true, Healthy: true}
		}}
	hv := Entry{Name: "hyperv", Priority: 70, Supported: true, Options: []Option{{Name: "hyperv-virtual-switch"}},
		Health: func(context.Context, Settings) Health { return Health{Installed: true, Running: true, Healthy: true} }}
	gone := Entry{Name: "old", Supported: false, Options: []Option{{Name: "old-flag"}}}
	r := NewRegistry(kvm, hv, gone)
	var names []string
	for _, o := range r.Options() {
		names = append(names, o.Name)
	}
	if got := strings.Join(names, ","); got != "hyperv-virtual-switch,kvm-accel,kvm-qemu-uri,old-flag" {
		t.Errorf("Options = %s (sorted, every driver's: a flag for another host is not an unknown flag)", got)
	}
	c, err := r.Choose(context.Background(), map[string]string{"kvm-qemu-uri": "qemu+ssh://h/system"})
	if err != nil || c.Entry.Name != "kvm2" || sawURI != "qemu+ssh://h/system" {
		t.Errorf("chose %s (%v), health saw %q", c.Entry.Name, err, sawURI)
	}
}
