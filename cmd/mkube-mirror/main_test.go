package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

func TestListenHosts(t *testing.T) {
	for _, tt := range []struct {
		addrs []string
		want  []string
	}{
		{[]string{"127.0.0.1:5080", "127.0.0.1:5080"}, []string{"127.0.0.1", "127.0.0.1"}},
		{[]string{"192.168.1.5:5080"}, []string{"192.168.1.5"}},
		{[]string{"mirror.lan:5080"}, []string{"mirror.lan"}},
		// Wildcards stand for no name a client should send.
		{[]string{":5080", "0.0.0.0:5080", "[::]:5080"}, nil},
	} {
		if got := listenHosts(tt.addrs...); !slices.Equal(got, tt.want) {
			t.Errorf("listenHosts(%q) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
}

// TestBuildFlags: every building command has the build directory and Debian source flags.
func TestBuildFlags(t *testing.T) {
	for _, cmd := range []*cobra.Command{newBuild(), newNodeImage(), newISO()} {
		for name, def := range map[string]string{"work": "out/build", "debian-mirror": "", "debian-suite": ""} {
			if f := cmd.Flags().Lookup(name); f == nil || f.DefValue != def {
				t.Errorf("%s --%s: %+v, want default %q", cmd.Name(), name, f, def)
			}
		}
	}
	if u := newBuild().Flags().Lookup("debian-suite").Usage; u != "Debian suite for base file systems (default: this host's)" {
		t.Errorf("build --debian-suite: %q", u)
	}
}

// TestReleaseAndPushFlags: the flags `make release` and `make release-mirror` pass, their defaults.
func TestReleaseAndPushFlags(t *testing.T) {
	for _, tt := range []struct {
		cmd      *cobra.Command
		defaults map[string]string
		required []string
	}{
		{newRelease(), map[string]string{"out": "out/release", "source": ".", "work": "out/build", "allow-dirty": "false"}, []string{"version", "registry"}},
		{newPush(), map[string]string{"kubernetes-version": ""}, []string{"from", "to"}},
	} {
		for name, def := range tt.defaults {
			if f := tt.cmd.Flags().Lookup(name); f == nil || f.DefValue != def {
				t.Errorf("%s --%s: %+v, want default %q", tt.cmd.Name(), name, f, def)
			}
		}
		for _, name := range tt.required {
			f := tt.cmd.Flags().Lookup(name)
			if f == nil || f.Annotations[cobra.BashCompOneRequiredFlag] == nil {
				t.Errorf("%s --%s is not a required flag", tt.cmd.Name(), name)
			}
		}
	}
}
