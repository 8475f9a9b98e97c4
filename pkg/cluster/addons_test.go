package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/out"
	"mkube/pkg/reason"
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

// stoppedDriver is a machine that exists and is stopped: addon changes are only remembered.
type stoppedDriver struct{ driver.Driver }

func (stoppedDriver) State(context.Context) (driver.State, error) { return driver.Stopped, nil }

func TestAddonToggleOnStoppedProfileIsRemembered(t *testing.T) {
	home := config.Home(t.TempDir())
	var stdout bytes.Buffer
	m := &Manager{Home: home, Out: out.New(&stdout, &stdout, 0), Drivers: driver.NewRegistry(driver.Entry{
		Name: "fake", Supported: true,
		New: func(string, driver.Options) (driver.Driver, error) { return stoppedDriver{}, nil },
	})}
	if err := home.Save(&config.Profile{Name: "p", Driver: "fake"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.AddonDisable(ctx, "p", "default-storageclass"); err != nil {
		t.Fatal(err)
	}
	if err := m.AddonEnable(ctx, "p", "storage-provisioner"); err == nil {
		t.Error("enabled an mkube-built addon on a profile without --image-repository")
	}
	if err := m.AddonEnable(ctx, "p", "no-such-addon"); reason.ExitCode(err) != reason.Usage.ExitCode {
		t.Errorf("unknown addon: %v", err)
	}
	if err := m.AddonEnable(ctx, "missing", "default-storageclass"); reason.ExitCode(err) != reason.GuestNotFound.ExitCode {
		t.Errorf("unknown profile: %v", err)
	}
	rows, err := m.AddonsList("p")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == "default-storageclass" && r.Status != "disabled" {
			t.Errorf("default-storageclass: %s", r.Status)
		}
	}
	p, _ := home.Load("p")
	removed, err := removedAddons(p)
	if err != nil || len(removed["default-storageclass"]) == 0 || len(removed) != 1 {
		t.Errorf("the next start does not remove default-storageclass: %v %v", removed, err)
	}
	if !strings.Contains(stdout.String(), "will be removed when \"p\" starts") {
		t.Errorf("output: %s", stdout.String())
	}
	var js bytes.Buffer
	if err := PrintAddons(&js, rows, "json"); err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || got["default-storageclass"]["Status"] != "disabled" ||
		got["storage-provisioner"]["Profile"] != "p" {
		t.Errorf("json: %s", js.String())
	}
}
