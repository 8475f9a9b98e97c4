package driver

import (
	"context"
	"strings"
	"testing"
)

func entry(name string, prio int, supported, healthy bool) Entry {
	return Entry{Name: name, Priority: prio, Supported: supported, Health: func(context.Context, Settings) Health {
		if healthy {
			return Health{Installed: true, Running: true, Healthy: true}
		}
		return Health{Installed: true, Problem: name + " is broken", Fix: "fix " + name}
	}}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
		wantErr string
	}{
		{"highest healthy wins", []Entry{entry("kvm2", 80, true, true), entry("docker", 100, true, true)}, "docker", ""},
		{"unhealthy skipped", []Entry{entry("kvm2", 80, true, true), entry("docker", 100, true, false)}, "kvm2", ""},
		{"unsupported ignored", []Entry{entry("hyperv", 200, false, true), entry("docker", 100, true, true)}, "docker", ""},
		{"none usable", []Entry{entry("docker", 100, true, false)}, "", "docker: docker is broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewRegistry(tt.entries...).Choose(context.Background(), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || c.Entry.Name != tt.want {
				t.Fatalf("chose %s, %v; want %s", c.Entry.Name, err, tt.want)
			}
		})
	}
	r := NewRegistry(entry("a", 1, true, true), entry("b", 2, true, true), entry("c", 3, false, true))
	if got := strings.Join(r.Names(), ","); got != "b,a" {
		t.Errorf("Names = %s", got)
	}
}
