package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
)

// A kubeadm init that failed in one of its phases is retried once on a reset node, with the
// certificates copied in again (the reset empties /etc/kubernetes/pki; their marker goes first);
// failures a reset cannot cure are not retried.
func TestControlPlaneRetriesInitOnce(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		phase   = "I1127 …\nerror: error execution phase wait-control-plane: cannot obtain client without bootstrap: connection refused\n"
		kubelet = "error: error execution phase wait-control-plane: failed while waiting for the kubelet to start: context deadline exceeded\n"
		config  = "error: unknown flag: --nope\n"
	)
	once := []string{
		"run: test -f /var/lib/mkube/kubeadm-init-done",
		"write: /var/lib/mkube/kubeadm.yaml (644)",
		"run: kubeadm init --config /var/lib/mkube/kubeadm.yaml",
	}
	retried := append(slices.Clone(once),
		"run: rm -f /etc/kubernetes/pki/.mkube-digest",
		"run: kubeadm reset --force --cri-socket unix:///run/containerd/containerd.sock",
		"run: cat /etc/kubernetes/pki/.mkube-digest",
		"write: /etc/kubernetes/pki/ca.crt (644)",
		"write: /etc/kubernetes/pki/.mkube-digest (644)",
		"write: /var/lib/mkube/kubeadm.yaml (644)",
		"run: kubeadm init --config /var/lib/mkube/kubeadm.yaml",
	)
	for _, tc := range []struct {
		name     string
		failures int    // kubeadm init exits 1 this many times
		stderr   string // what it says then
		wantErr  bool
		want     []string
	}{
		{name: "first init succeeds", want: append(slices.Clone(once), "run: touch /var/lib/mkube/kubeadm-init-done")},
		{name: "second init succeeds", failures: 1, stderr: phase, want: append(slices.Clone(retried), "run: touch /var/lib/mkube/kubeadm-init-done")},
		{name: "both fail", failures: 2, stderr: phase, wantErr: true, want: retried},
		{name: "the kubelet never started: no retry", failures: 1, stderr: kubelet, wantErr: true, want: once},
		{name: "a configuration error: no retry", failures: 1, stderr: config, wantErr: true, want: once},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &drivertest.Log{}
			d := drivertest.NewDriver(log)
			inits := 0
			d.Node.Reply = func(args []string) (string, int) {
				switch {
				case slices.Equal(args[:2], []string{"kubeadm", "init"}):
					if inits++; inits <= tc.failures {
						return "", 1
					}
				}
				return "", 0
			}
			d.Node.Stderr = func([]string) string { return tc.stderr }
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			r, err := d.Runner(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var said []string
			b := &Bootstrapper{Logf: func(f string, _ ...any) { said = append(said, f) }}
			c := Cluster{Params: params("v1.37.2"), PKI: map[string]string{"ca.crt": ca}}
			// The certificates are in, as Provision leaves them before the control plane step.
			if err := b.pki(context.Background(), r, c); err != nil {
				t.Fatal(err)
			}
			log.Take()
			err = b.controlPlane(context.Background(), r, c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("controlPlane: %v, want error: %v", err, tc.wantErr)
			}
			if got := log.Take(); !slices.Equal(got, tc.want) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if told, retry := len(said) > 0, len(tc.want) > len(once)+1; told != retry {
				t.Errorf("said %q at -v 1; a retry should be told, nothing else", said)
			}
		})
	}
}

// Only kubeadm init's own phase failures are retried: not a command after it (the done marker),
// not other errors, not a cancelled start.
func TestRetryable(t *testing.T) {
	phase := "error: error execution phase wait-control-plane: connection refused"
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"a phase failed", context.Background(), &driver.ExitError{Args: []string{"kubeadm", "init", "--config", "x"}, Code: 1, Stderr: phase}, true},
		{"wrapped", context.Background(), fmt.Errorf("kubeadm init: x\n%w", &driver.ExitError{Args: []string{"kubeadm", "init"}, Code: 1, Stderr: phase}), true},
		{"the done marker after a good init", context.Background(), &driver.ExitError{Args: []string{"touch", "/var/lib/mkube/kubeadm-init-done"}, Code: 1, Stderr: phase}, false},
		{"not an exit", context.Background(), errors.New("runner closed"), false},
		{"cancelled", cancelled, &driver.ExitError{Args: []string{"kubeadm", "init"}, Code: 1, Stderr: phase}, false},
		{"no error", context.Background(), nil, false},
	} {
		if got := retryable(tc.ctx, tc.err) != nil; got != tc.want {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
