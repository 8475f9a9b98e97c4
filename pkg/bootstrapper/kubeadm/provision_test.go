package kubeadm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mkube/pkg/driver/drivertest"
)

// A failed kubeadm init is retried once on a reset node with the certificates copied in again
// (the reset empties /etc/kubernetes/pki); a second failure is the start's error.
func TestControlPlaneRetriesInitOnce(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		failures int // kubeadm init exits 1 this many times
		wantErr  bool
		want     []string
	}{
		{name: "first init succeeds", failures: 0, want: []string{
			"run: test -f /var/lib/mkube/kubeadm-init-done",
			"write: /var/lib/mkube/kubeadm.yaml (644)",
			"run: kubeadm init --config /var/lib/mkube/kubeadm.yaml",
			"run: touch /var/lib/mkube/kubeadm-init-done",
		}},
		{name: "second init succeeds", failures: 1, want: []string{
			"run: test -f /var/lib/mkube/kubeadm-init-done",
			"write: /var/lib/mkube/kubeadm.yaml (644)",
			"run: kubeadm init --config /var/lib/mkube/kubeadm.yaml",
			"run: kubeadm reset --force --cri-socket unix:///run/containerd/containerd.sock",
			"run: rm -f /etc/kubernetes/pki/.mkube-digest",
			"run: cat /etc/kubernetes/pki/.mkube-digest",
			"write: /etc/kubernetes/pki/ca.crt (644)",
			"write: /etc/kubernetes/pki/.mkube-digest (644)",
			"write: /var/lib/mkube/kubeadm.yaml (644)",
			"run: kubeadm init --config /var/lib/mkube/kubeadm.yaml",
			"run: touch /var/lib/mkube/kubeadm-init-done",
		}},
		{name: "both fail", failures: 2, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &drivertest.Log{}
			d := drivertest.NewDriver(log)
			inits := 0
			d.Node.Reply = func(args []string) (string, int) {
				if slices.Equal(args[:2], []string{"kubeadm", "init"}) {
					if inits++; inits <= tc.failures {
						return "", 1
					}
				}
				return "", 0
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			log.Take()
			r, err := d.Runner(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var said []string
			b := &Bootstrapper{Logf: func(f string, _ ...any) { said = append(said, f) }}
			err = b.controlPlane(context.Background(), r, Cluster{Params: params("v1.37.2"), PKI: map[string]string{"ca.crt": ca}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("controlPlane: %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if inits != 2 {
					t.Errorf("kubeadm init ran %d times, want 2 (one retry)", inits)
				}
				return
			}
			if got := log.Take(); !slices.Equal(got, tc.want) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if retried := len(said) > 0; retried != (tc.failures > 0) {
				t.Errorf("said %q at -v 1; a retry should be told, a first success not", said)
			}
		})
	}
}
