// Package drivertest is the conformance suite every driver passes against the real thing it drives
// (Docker, libvirt) or, for hypervisors that cannot run on the build machine, against fakes that
// behave like their tools: create, state, endpoint, runner, stop, start, delete, and idempotence.
package drivertest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/ssh"
)

// Config says how to build the driver under test.
type Config struct {
	New     func(machineDir string) (driver.Driver, error)
	Spec    driver.Spec // SSHPublicKey is filled in by the suite
	Timeout time.Duration
	// NoGuest skips what needs a booted guest (the runner, /var surviving a restart): for fakes of
	// hypervisors that cannot run on the build machine.
	NoGuest bool
	// Intruder, when set, builds the same profile's driver as another mkube home would (another
	// Owner.HomeID, its own machine directory). The suite checks that it refuses the machine the
	// driver under test created: every method fails with driver.ErrNotOwned and the machine
	// keeps running.
	Intruder func(machineDir string) (driver.Driver, error)
}

// Run runs the suite. It leaves nothing behind, also when it fails.
func Run(t *testing.T, cfg Config) {
	dir := t.TempDir()
	_, pub, err := ssh.EnsureKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec.SSHPublicKey = pub
	d, err := cfg.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := d.Delete(dctx); err != nil {
			t.Errorf("cleanup delete: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	state := func(want driver.State) {
		t.Helper()
		got, err := d.State(ctx)
		if err != nil || got != want {
			t.Fatalf("state %s (%v), want %s", got, err, want)
		}
	}

	state(driver.Nonexistent)
	start := time.Now()
	if err := d.Create(ctx, cfg.Spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Logf("create: %s", time.Since(start).Round(100*time.Millisecond))
	state(driver.Running)
	ep, err := d.Endpoint(ctx)
	if err != nil || ep.IP == "" || ep.SSHPort == 0 || ep.APIServerPort == 0 {
		t.Fatalf("endpoint %+v: %v", ep, err)
	}
	t.Logf("endpoint: %+v", ep)

	runs := func(what string) {
		t.Helper()
		if cfg.NoGuest {
			return
		}
		r, err := d.Runner(ctx)
		if err != nil {
			t.Fatalf("%s: runner: %v", what, err)
		}
		defer r.Close()
		var out bytes.Buffer
		if err := r.Run(ctx, driver.Cmd{Args: []string{"cat", "/proc/sys/kernel/hostname"}, Stdout: &out}); err != nil {
			t.Fatalf("%s: run: %v", what, err)
		}
		if strings.TrimSpace(out.String()) == "" {
			t.Errorf("%s: no hostname", what)
		}
		const content = "written by the driver suite\n"
		if err := r.WriteFile(ctx, "/var/lib/mkube-drivertest/file", 0o600, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatalf("%s: write: %v", what, err)
		}
		out.Reset()
		if err := r.Run(ctx, driver.Cmd{Args: []string{"stat", "-c", "%a", "/var/lib/mkube-drivertest/file"}, Stdout: &out}); err != nil || strings.TrimSpace(out.String()) != "600" {
			t.Errorf("%s: mode %q %v", what, out.String(), err)
		}
		err = r.Run(ctx, driver.Cmd{Args: []string{"sh", "-c", "exit 3"}})
		if ee, ok := err.(*driver.ExitError); !ok || ee.Code != 3 {
			t.Errorf("%s: a failing command gave %v, want an ExitError with code 3", what, err)
		}
	}
	runs("after create")

	if cfg.Intruder != nil {
		intruder(t, ctx, cfg, d)
	}

	if err := d.Create(ctx, cfg.Spec); err != nil {
		t.Errorf("create again (idempotent): %v", err)
	}
	state(driver.Running)

	start = time.Now()
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stop: %s", time.Since(start).Round(100*time.Millisecond))
	state(driver.Stopped)
	if err := d.Stop(ctx); err != nil {
		t.Errorf("stop again: %v", err)
	}
	start = time.Now()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("start: %s", time.Since(start).Round(100*time.Millisecond))
	state(driver.Running)
	runs("after restart")
	if !cfg.NoGuest {
		r, _ := d.Runner(ctx)
		var out bytes.Buffer
		if err := r.Run(ctx, driver.Cmd{Args: []string{"cat", "/var/lib/mkube-drivertest/file"}, Stdout: &out}); err != nil || out.String() != "written by the driver suite\n" {
			t.Errorf("/var did not survive stop/start: %q %v", out.String(), err)
		}
	}

	if err := d.Delete(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}
	state(driver.Nonexistent)
	if err := d.Delete(ctx); err != nil {
		t.Errorf("delete again: %v", err)
	}
}

// intruder checks that another home's driver for the same profile leaves d's running machine alone.
func intruder(t *testing.T, ctx context.Context, cfg Config, d driver.Driver) {
	t.Helper()
	other, err := cfg.Intruder(t.TempDir())
	if err != nil {
		t.Fatalf("intruder: %v", err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, driver.ErrNotOwned) {
			t.Errorf("another home's %s of this machine: %v, want an error wrapping driver.ErrNotOwned", what, err)
		}
	}
	st, err := other.State(ctx)
	refused("State", err)
	if st == driver.Nonexistent {
		t.Errorf("another home's State says %s: it would create over the machine", st)
	}
	refused("Create", other.Create(ctx, cfg.Spec))
	refused("Start", other.Start(ctx))
	refused("Stop", other.Stop(ctx))
	refused("Delete", other.Delete(ctx))
	if st, err := d.State(ctx); err != nil || st != driver.Running {
		t.Fatalf("after another home's attempts the machine is %s (%v), want %s", st, err, driver.Running)
	}
}
