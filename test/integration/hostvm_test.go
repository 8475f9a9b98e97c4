//go:build integration

package integration

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
	"mkube/pkg/driver/kvm2"
	"mkube/pkg/ssh"
)

// hostVM is a workstation the test boots under libvirt from the host flavor of mkube's ISO
// (`make host-iso`: Debian 12's kernel on cgroup v2, systemd, Docker and rootful Podman), with
// mkube and the node image copied in, reached over SSH as its user "docker". The kvm2 driver makes
// it: the same code that boots mkube's nodes, marked with the test's owner.
type hostVM struct {
	t      *testing.T
	name   string
	runner *ssh.Runner
}

// bootHostVM creates and boots the VM; it is deleted when the test ends.
func bootHostVM(t *testing.T, name string, memoryMB int) *hostVM {
	t.Helper()
	needLibvirt(t)
	iso := outPath(t, hostISO)
	if _, err := os.Stat(iso); err != nil {
		t.Fatalf("%s is missing: make host-iso builds it", iso)
	}
	dir := t.TempDir()
	d, err := kvm2.New(name, driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itesthostvmhome"}, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := d.Delete(ctx); err != nil {
			t.Errorf("deleting the host VM: %v", err)
		}
	})
	_, pub, err := ssh.EnsureKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	begin := time.Now()
	if err := d.Create(ctx, driver.Spec{Name: name, CPUs: 2, MemoryMB: memoryMB, DiskMB: 40000, Image: iso, SSHPublicKey: pub}); err != nil {
		t.Fatalf("booting the host VM: %v", err)
	}
	r, err := d.Runner(ctx)
	if err != nil {
		t.Fatalf("SSH into the host VM: %v", err)
	}
	vm := &hostVM{t: t, name: name, runner: r.(*ssh.Runner)}
	t.Cleanup(func() { r.Close() })
	// Booted means the engines answer, not just sshd.
	vm.must(t, "sh", "-c", "for i in $(seq 1 600); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done; systemctl status docker; exit 1")
	t.Logf("host VM %s booted and Docker answers in %s", name, time.Since(begin).Round(time.Second))
	return vm
}

// hostISO is where `make host-iso` writes the host flavor of the ISO.
const hostISO = "cgroupv2-host.iso"

// run runs a command in the VM as root and returns its combined output.
func (vm *hostVM) run(args ...string) (string, error) {
	return vm.runIn(nil, args...)
}

func (vm *hostVM) runIn(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(vm.t.Context(), 15*time.Minute)
	defer cancel()
	var out syncBuffer
	err := vm.runner.Run(ctx, driver.Cmd{Args: args, Stdin: stdin, Stdout: &out, Stderr: &out})
	return out.String(), err
}

// must runs a command in the VM as root; t is the (sub)test that fails if it does.
func (vm *hostVM) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := vm.run(args...)
	if err != nil {
		t.Fatalf("in the host VM: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mkube runs mkube in the VM as its user (not root), the way a developer would.
func (vm *hostVM) mkube(args ...string) (string, error) {
	return vm.mkubeIn(nil, args...)
}

func (vm *hostVM) mkubeIn(stdin io.Reader, args ...string) (string, error) {
	return vm.runIn(stdin, append([]string{"-u", "docker", "-H", "env", "MKUBE_IN_STYLE=false", "/usr/local/bin/mkube"}, args...)...)
}

func (vm *hostVM) mustMkube(t *testing.T, args ...string) string {
	t.Helper()
	out, err := vm.mkube(args...)
	if err != nil {
		t.Fatalf("in the host VM: mkube %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// install copies the host's file into the VM.
func (vm *hostVM) install(src, dst string, mode int64) {
	vm.t.Helper()
	f, err := os.Open(src)
	if err != nil {
		vm.t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if err := vm.runner.WriteFile(vm.t.Context(), dst, mode, st.Size(), f); err != nil {
		vm.t.Fatalf("copying %s into the host VM: %v", src, err)
	}
}

// loadImage streams an image from the host's Docker engine into the VM's (`docker save | docker load`).
func (vm *hostVM) loadImage(ref string, engine ...string) {
	vm.t.Helper()
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		vm.t.Fatal(err)
	}
	defer cli.Close()
	rc, err := cli.ImageSave(vm.t.Context(), []string{ref})
	if err != nil {
		vm.t.Fatalf("docker save %s: %v", ref, err)
	}
	defer rc.Close()
	if len(engine) == 0 {
		engine = []string{"docker"}
	}
	if out, err := vm.runIn(rc, append(engine, "load")...); err != nil {
		vm.t.Fatalf("loading %s into the host VM: %v\n%s", ref, err, out)
	}
}

// forward makes addr (a loopback host:port of this machine, e.g. the mirror) answer on the same
// address inside the VM, through the SSH connection: both ends stay on loopback.
func (vm *hostVM) forward(addr string) {
	vm.t.Helper()
	ln, err := vm.runner.Client.Listen("tcp", addr)
	if err != nil {
		vm.t.Fatalf("forwarding %s into the host VM: %v", addr, err)
	}
	vm.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			remote, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer remote.Close()
				local, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer local.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(local, remote); done <- struct{}{} }()
				go func() { io.Copy(remote, local); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

// syncBuffer is a bytes.Buffer that stdout and stderr may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
