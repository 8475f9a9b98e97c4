package main

import (
	"slices"
	"testing"
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
