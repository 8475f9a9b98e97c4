package cluster

import (
	"bytes"
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/out"
)

func TestUsableAddonsNeedAMirrorForMkubeImages(t *testing.T) {
	var stderr bytes.Buffer
	m := &Manager{Out: out.New(&bytes.Buffer{}, &stderr, 0)}
	names := func(p *config.Profile) string {
		var s []string
		for _, a := range m.usableAddons(p) {
			s = append(s, a.Name)
		}
		return strings.Join(s, ",")
	}
	if got := names(&config.Profile{ImageRepository: "127.0.0.1:5080"}); got != "default-storageclass,storage-provisioner" {
		t.Errorf("with a mirror: %s", got)
	}
	if got := names(&config.Profile{}); got != "default-storageclass" {
		t.Errorf("without a mirror: %s", got)
	}
	if !strings.Contains(stderr.String(), "storage-provisioner skipped") {
		t.Errorf("no warning: %q", stderr.String())
	}
}
