package cli

import (
	"bytes"
	"context"
	"os"
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
		{args: []string{"version", "--short"}, stdout: "v0.1.0-dev\n"},
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
		// Driver options are keys on every host, checked by the driver's own rules.
		{[]string{"config", "set", "kvm-accel", "fast"}, 14, "use one of [auto kvm tcg]"},
		{[]string{"config", "set", "kvm-accel", "tcg"}, 0, ""},
		{[]string{"config", "set", "hyperv-virtual-switch", "External LAN"}, 0, ""},
		{[]string{"config", "unset", "kvm-accel"}, 0, ""},
		{[]string{"config", "unset", "hyperv-virtual-switch"}, 0, ""},
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

// TestHostileProfileRefusedByEveryCommand: the profile is validated once, before any command runs,
// whichever way it was given; nothing beside (or in) MKUBE_HOME changes.
func TestHostileProfileRefusedByEveryCommand(t *testing.T) {
	base := t.TempDir() + "/a/b"
	home := base + "/home"
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(base+"/sentinel", []byte("keep"), 0o644)
	t.Setenv("MKUBE_HOME", home)
	t.Setenv("KUBECONFIG", base+"/kubeconfig")
	commands := [][]string{{"start"}, {"stop"}, {"delete"}, {"delete", "--purge"}, {"status"}, {"ip"}, {"ssh"}, {"logs"},
		{"kubectl", "--", "get", "pods"}, {"addons", "list"}, {"addons", "enable", "dashboard"}, {"service", "list"},
		{"image", "ls"}, {"update-context"}, {"dashboard", "--url"}, {"cache", "reload"}}
	names := []string{"../..", "..", ".", "", "a/b", "/etc", "a\x00b", "a\nb", strings.Repeat("a", 300), "ünïcödé", "UPPER", "-rf"}
	for _, cmd := range commands {
		for _, name := range names {
			var out, errw bytes.Buffer
			args := append([]string{"-p", name}, cmd...)
			code := Run(context.Background(), args, strings.NewReader(""), &out, &errw)
			if code != 14 || !strings.Contains(errw.String(), "MK_USAGE") || strings.Count(strings.TrimSpace(errw.String()), "\n") != 0 {
				t.Errorf("mkube %q: exit %d, stderr %q; want one MK_USAGE line, exit 14", args, code, errw.String())
			}
			if ents, _ := os.ReadDir(home); len(ents) != 0 {
				t.Fatalf("mkube %q wrote into MKUBE_HOME", args)
			}
		}
	}
	for _, env := range []string{"MKUBE_PROFILE"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "../..")
			var out, errw bytes.Buffer
			if code := Run(context.Background(), []string{"delete"}, strings.NewReader(""), &out, &errw); code != 14 || !strings.Contains(errw.String(), env) {
				t.Errorf("%s=../..: exit %d, %q", env, code, errw.String())
			}
		})
	}
	t.Run("saved default profile", func(t *testing.T) {
		os.MkdirAll(home+"/config", 0o700)
		os.WriteFile(home+"/config/config.json", []byte(`{"profile": "../.."}`), 0o600)
		defer os.RemoveAll(home + "/config")
		var out, errw bytes.Buffer
		if code := Run(context.Background(), []string{"delete"}, strings.NewReader(""), &out, &errw); code != 14 || !strings.Contains(errw.String(), "saved default profile") {
			t.Errorf("a hostile saved profile: exit %d, %q", code, errw.String())
		}
	})
	if raw, err := os.ReadFile(base + "/sentinel"); err != nil || string(raw) != "keep" {
		t.Fatalf("a file beside MKUBE_HOME changed: %v", err)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		t.Errorf("refused commands wrote into MKUBE_HOME: %v", got)
	}
}

func TestProfileCommand(t *testing.T) {
	t.Setenv("MKUBE_HOME", t.TempDir())
	t.Setenv("KUBECONFIG", t.TempDir()+"/config")
	t.Setenv("MKUBE_PROFILE", "")
	run := func(args ...string) (int, string, string) {
		var out, errw bytes.Buffer
		code := Run(context.Background(), args, strings.NewReader(""), &out, &errw)
		return code, out.String(), errw.String()
	}
	if code, out, _ := run("profile"); code != 0 || out != "mkube\n" {
		t.Errorf("profile: %d %q", code, out)
	}
	if code, _, stderr := run("profile", "nosuch"); code != 85 || !strings.Contains(stderr, "GUEST_NOT_FOUND") {
		t.Errorf("profile nosuch: %d %q", code, stderr)
	}
	if code, _, stderr := run("profile", "../.."); code != 14 {
		t.Errorf("profile ../..: %d %q", code, stderr)
	}
	if code, _, stderr := run("profile", "a", "b"); code != 14 {
		t.Errorf("profile a b: %d %q", code, stderr)
	}
	for _, bad := range [][]string{{"memory", "1e30g"}, {"disk-size", "nan"}, {"profile", "../.."}} {
		if code, _, stderr := run("config", "set", bad[0], bad[1]); code != 14 {
			t.Errorf("config set %v: %d %q", bad, code, stderr)
		}
	}
}
