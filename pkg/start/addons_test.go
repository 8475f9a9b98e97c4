package start

import (
	"bytes"
	"strings"
	"testing"

	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/out"
)

func TestUsableAddonsNeedAMirrorForMkubeImages(t *testing.T) {
	var stderr bytes.Buffer
	m := &cluster.Manager{Out: out.New(&bytes.Buffer{}, &stderr, 0)}
	names := func(p *config.Profile) string {
		var s []string
		for _, a := range usableAddons(m, p) {
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

func TestRemovedAddonsAreRendered(t *testing.T) {
	t.Parallel()
	removed, err := removedAddons(map[string]bool{"default-storageclass": false, "dashboard": true, "gone": false})
	if err != nil || len(removed["default-storageclass"]) == 0 || len(removed) != 1 {
		t.Errorf("the next start does not remove default-storageclass: %v %v", removed, err)
	}
}
