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
