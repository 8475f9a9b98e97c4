package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunWithoutAMachine(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{args: []string{"get-k8s-versions"}, stdout: "v1.37.2 (default)\n"},
		{args: []string{"version", "--short"}, stdout: "v0.1.0\n"},
		{args: []string{"start", "--memory", "abc"}, code: 14, stderrIn: "MK_USAGE"},
		{args: []string{"start", "--cpus", "1"}, code: 29, stderrIn: "RSRC_INSUFFICIENT_CORES"},
		{args: []string{"start", "--kubernetes-version", "v1.30.0"}, code: 106, stderrIn: "v1.31.x through v1.37.x"},
		{args: []string{"status", "-p", "nosuch"}, code: 85, stderrIn: "GUEST_NOT_FOUND"},
		{args: []string{"nosuchcommand"}, code: 1, stderrIn: "unknown command"},
		{args: []string{"ip", "extra"}, code: 14, stderrIn: "unexpected argument"},
		{args: []string{"cache", "add"}, code: 14, stderrIn: "no image given"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("MKUBE_HOME", t.TempDir())
			t.Setenv("KUBECONFIG", t.TempDir()+"/config")
			var out, errw bytes.Buffer
			code := Run(context.Background(), tt.args, strings.NewReader(""), &out, &errw)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errw.String())
			}
			if tt.stdout != "" && !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.stdout)
			}
			if tt.stderrIn != "" {
				if !strings.Contains(errw.String(), tt.stderrIn) || strings.Count(strings.TrimSpace(errw.String()), "\n") != 0 {
					t.Errorf("stderr %q: want one line containing %q", errw.String(), tt.stderrIn)
				}
			}
		})
	}
}

func TestConfigDefaultsStart(t *testing.T) {
	t.Setenv("MKUBE_HOME", t.TempDir())
	t.Setenv("KUBECONFIG", t.TempDir()+"/config")
	run := func(args ...string) (int, string, string) {
		var out, errw bytes.Buffer
		code := Run(context.Background(), args, strings.NewReader(""), &out, &errw)
		return code, out.String(), errw.String()
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "set", "driver", "nosuch"}, 56, "DRV_UNSUPPORTED"},
		{[]string{"config", "set", "cpus", "abc"}, 14, "invalid value"},
		{[]string{"config", "set", "colour", "blue"}, 14, "not found"},
		{[]string{"config", "get", "driver"}, 14, "could not be found"},
		{[]string{"config", "set", "driver", "docker"}, 0, ""},
		{[]string{"config", "set", "cpus", "1"}, 0, ""},
	} {
		if code, _, stderr := run(tt.args...); code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q", tt.args, code, tt.code, stderr)
		}
	}
	if _, out, _ := run("config", "get", "driver"); out != "docker\n" {
		t.Errorf("config get driver: %q", out)
	}
	if _, out, _ := run("config", "view"); out != "- cpus: 1\n- driver: docker\n" {
		t.Errorf("config view: %q", out)
	}
	// The saved cpus reaches start, which refuses it before doing anything.
	if code, _, stderr := run("start"); code != 29 || !strings.Contains(stderr, "RSRC_INSUFFICIENT_CORES") {
		t.Errorf("start with saved cpus=1: exit %d %q", code, stderr)
	}
	// A flag still wins over the saved default.
	if code, _, stderr := run("start", "--cpus", "abc"); code != 14 {
		t.Errorf("flag over setting: exit %d %q", code, stderr)
	}
}
