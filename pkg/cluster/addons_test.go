package cluster

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// stoppedDriver is a machine that exists and is stopped: addon changes are only remembered.
type stoppedDriver struct{ driver.Driver }

func (stoppedDriver) State(context.Context) (driver.State, error) { return driver.Stopped, nil }
func (stoppedDriver) Close() error                                { return nil }

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
	// A development build has no registry for mkube's own images; a release build has its own.
	if err := m.AddonEnable(ctx, "p", "storage-provisioner"); (err == nil) != (release.Registry() != "") {
		t.Errorf("enable an mkube-built addon on a profile without a mirror (release registry %q): %v", release.Registry(), err)
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
	if p, _ := home.Load("p"); p.Addons["default-storageclass"] {
		t.Errorf("not remembered: %v", p.Addons)
	}
	if !strings.Contains(stdout.String(), "will be removed when \"p\" starts") {
		t.Errorf("output: %s", stdout.String())
	}
}
