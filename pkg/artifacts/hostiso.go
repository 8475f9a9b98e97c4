package artifacts

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The "host" flavor of the ISO is not a node: it is a stand-in for a developer's workstation of
// today — Debian 12's kernel booted with the unified cgroup hierarchy (cgroup v2) and systemd
// managing cgroups, Debian's Docker engine and rootful Podman — on which the tests run mkube's
// container drivers (make test-cgroupv2). It boots like the node ISO (same initramfs, data disk and
// user-data contract), so the kvm2 driver can create it.
const (
	FlavorNode = "node"
	FlavorHost = "host"
)

// hostPackages are the workstation's: an init, SSH for the tests, and the container engines.
var hostPackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates",
	"iptables", "kmod", "util-linux", "mount", "procps", "iproute2", "curl", "less",
	"docker.io", "podman", "netavark", "aardvark-dns",
}

// hostPostRevision changes whenever hostPost does, so the host root file system is rebuilt.
const hostPostRevision = "host-2"

// hostPost makes the root file system a workstation with one user, docker (uid 1000, in the docker
// group, passwordless sudo: the login the ISO's user-data contract authorizes), whose engines keep
// their data on the data disk: overlayfs storage cannot live on the overlay root.
func hostPost(dir string) error {
	gid, err := groupID(dir, "docker")
	if err != nil {
		return err
	}
	if err := appendLine(dir, "etc/passwd", "docker", fmt.Sprintf("docker:x:1000:%d:mkube test user:/home/docker:/bin/bash", gid)); err != nil {
		return err
	}
	if err := appendLine(dir, "etc/shadow", "docker", "docker:*:19000:0:99999:7:::"); err != nil {
		return err
	}
	home := filepath.Join(dir, "home/docker/.ssh")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	for _, p := range []string{filepath.Dir(home), home} {
		if err := os.Lchown(p, 1000, gid); err != nil {
			return err
		}
	}
	hostkeys, err := nodeFS.ReadFile("nodefs/etc/systemd/system/ssh.service.d/10-hostkeys.conf")
	if err != nil {
		return err
	}
	files := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"etc/sudoers.d/docker":                              {"docker ALL=(ALL) NOPASSWD:ALL\n", 0o440},
		"etc/ssh/sshd_config.d/mkube.conf":                  {"PasswordAuthentication no\nUseDNS no\n", 0o644},
		"etc/systemd/system/ssh.service.d/10-hostkeys.conf": {string(hostkeys), 0o644},
		"etc/docker/daemon.json":                            {`{"data-root": "/mnt/mkube-data/docker"}` + "\n", 0o644},
		"etc/containers/storage.conf": {"[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n" +
			"graphroot = \"/mnt/mkube-data/containers/storage\"\n", 0o644},
		"etc/machine-id": {"", 0o444},
	}
	for p, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			return err
		}
		os.Remove(filepath.Join(dir, p))
		if err := os.WriteFile(filepath.Join(dir, p), []byte(f.content), f.mode); err != nil {
			return err
		}
	}
	if err := oneMachineID(dir); err != nil {
		return err
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		os.Remove(k)
	}
	// Podman's API socket, as a systemd host has it once `systemctl enable podman.socket` ran.
	wants := filepath.Join(dir, "etc/systemd/system/sockets.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	return relink("/lib/systemd/system/podman.socket", filepath.Join(wants, "podman.socket"))
}

// groupID reads a group's ID from the root file system's /etc/group.
func groupID(dir, group string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "etc/group"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == group {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("no group %q in the root file system (is docker.io installed?)", group)
}
