// Package sshdriver is `--driver=ssh`: a machine that already runs Linux (bare metal, a cloud VM, a
// Vagrant box), reached over SSH with the user's own key, as minikube's ssh driver. mkube does not
// create or boot it: Create installs mkube's container runtime on it (containerd, runc, the CNI
// plugins and their configuration and units, taken from mkube's node image on the host: nothing is
// downloaded on the machine), Stop and Start stop and start that runtime and the kubelet, and
// Delete runs `kubeadm reset` and removes exactly what mkube installed, as a manifest on the machine
// records it.
package sshdriver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"mkube/pkg/driver"
)

// Name of the driver, as minikube's.
const Name = "ssh"

// APIServerPort is where the API server answers on the machine's address (kubeadm's bindPort).
const APIServerPort = 8443

// Options are the driver's settings, with minikube's flag names and defaults.
var Options = []driver.Option{
	{Name: "ssh-ip-address", Help: "ssh: IP address of the Linux machine to run the node on (required with --driver=ssh)", Validate: checkIP},
	{Name: "ssh-user", Default: "root", Help: "ssh: login user on the machine: root, or a user with passwordless sudo", Validate: checkUser},
	{Name: "ssh-key", Help: "ssh: absolute path of the private key to log in with (default ~/.ssh/id_ed25519, else ~/.ssh/id_rsa)", Validate: checkKeyPath},
	{Name: "ssh-port", Default: "22", Help: "ssh: SSH port of the machine", Validate: checkPort},
}

// checkIP accepts an IP address only: it is also the address kubeadm advertises the API server on,
// which must be one of the machine's own, and a host name would be resolved differently by each
// side.
func checkIP(v string) error {
	if net.ParseIP(v) == nil {
		return errors.New("not an IP address")
	}
	return nil
}

// userPattern is a portable login name (POSIX's, as useradd accepts by default).
var userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

func checkUser(v string) error {
	if !userPattern.MatchString(v) {
		return errors.New("not a login name (lowercase letters, digits, _ . -)")
	}
	return nil
}

// checkKeyPath accepts an absolute path or one under ~/ (the shell expands neither in
// --ssh-key=~/...): the profile keeps the value, so a path relative to today's directory would
// point elsewhere tomorrow.
func checkKeyPath(v string) error {
	if strings.ContainsAny(v, "\x00\n\r") {
		return errors.New("not a file path")
	}
	if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "~/") && !isWindowsAbs(v) {
		return errors.New("give an absolute path (or ~/...)")
	}
	return nil
}

func isWindowsAbs(v string) bool {
	return len(v) > 2 && v[1] == ':' && (v[2] == '\\' || v[2] == '/')
}

func checkPort(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("not a port number (1-65535)")
	}
	return nil
}

// Entry registers the driver: it runs wherever mkube does, as nothing but SSH is needed on the host.
func Entry(goos string) driver.Entry {
	_ = goos // supported on every host OS mkube builds for
	return driver.Entry{Name: Name, Priority: 10, Supported: true, NodeFiles: true, Options: Options, Health: Health, New: New}
}

// keyPath is the private key the settings name: ssh-key (~/ expanded), else the user's usual
// ed25519 or RSA key, the first that exists.
func keyPath(s driver.Settings) (string, error) {
	home, err := os.UserHomeDir()
	if k := s["ssh-key"]; k != "" {
		if rest, ok := strings.CutPrefix(k, "~/"); ok {
			if err != nil {
				return "", fmt.Errorf("--ssh-key=%s: %w", k, err)
			}
			k = filepath.Join(home, filepath.FromSlash(rest))
		}
		return k, nil
	}
	if err != nil {
		return "", fmt.Errorf("no --ssh-key given, and no home directory to look for one in: %w", err)
	}
	for _, n := range []string{"id_ed25519", "id_rsa"} {
		if p := filepath.Join(home, ".ssh", n); fileExists(p) {
			return p, nil
		}
	}
	return "", errors.New("no --ssh-key given, and neither ~/.ssh/id_ed25519 nor ~/.ssh/id_rsa exists")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Health checks what can be checked from the host: an address given, a usable key, and something
// listening on the SSH port. Whether the login works and the machine can run a node is checked
// when the driver first logs in (Create).
func Health(ctx context.Context, s driver.Settings) driver.Health {
	ip := s["ssh-ip-address"]
	if ip == "" {
		return driver.Health{Problem: "no machine given", Fix: "pass --ssh-ip-address=IP (and --ssh-user, --ssh-key) of a Linux machine you can log in to over SSH"}
	}
	key, err := keyPath(s)
	if err == nil {
		err = checkKey(key)
	}
	if err != nil {
		return driver.Health{Installed: true, Problem: err.Error(), Fix: "pass --ssh-key=PATH of the private key that logs in to " + ip}
	}
	addr := net.JoinHostPort(ip, s["ssh-port"])
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return driver.Health{Installed: true, Problem: "nothing answers on " + addr + " (" + err.Error() + ")",
			Fix: "check --ssh-ip-address and --ssh-port, and that the machine is up and runs an SSH server"}
	}
	conn.Close()
	return driver.Health{Installed: true, Running: true, Healthy: true}
}

// checkKey reads a private key: a missing, unreadable or passphrase-protected key is said at once
// rather than as a failed login.
func checkKey(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the SSH key: %w", err)
	}
	if _, err := gossh.ParsePrivateKey(raw); err != nil {
		var pp *gossh.PassphraseMissingError
		if errors.As(err, &pp) {
			return fmt.Errorf("the SSH key %s has a passphrase, which mkube cannot ask for: use a key without one", path)
		}
		return fmt.Errorf("the SSH key %s: %w", path, err)
	}
	return nil
}
