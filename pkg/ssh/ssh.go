// Package ssh talks to a node over SSH with its per-machine key: commands for the bootstrapper
// (a driver.Runner), and interactive sessions for `mkube ssh`.
package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/util/wait"

	"mkube/pkg/atomicfile"
	"mkube/pkg/driver"
)

// KeyFile is the private login key a profile's machines trust, in its machine directory.
func KeyFile(machineDir string) string { return filepath.Join(machineDir, "id_ed25519") }

// EnsureKey returns the machine's key pair in dir (KeyFile and KeyFile.pub), making it if needed,
// and the public key in authorized_keys form.
func EnsureKey(dir string) (privatePath, authorized string, err error) {
	priv := KeyFile(dir)
	if raw, err := os.ReadFile(priv + ".pub"); err == nil {
		if _, err := os.Stat(priv); err == nil {
			return priv, strings.TrimSpace(string(raw)), nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	block, err := gossh.MarshalPrivateKey(key, "mkube")
	if err != nil {
		return "", "", err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))) + " mkube"
	// Both atomically, the private key first: a .pub beside it means the pair is whole, so a crash
	// in between only costs a new pair next time.
	if err := atomicfile.WriteBytes(priv, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteBytes(priv+".pub", []byte(line+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return priv, line, nil
}

// Client connects to one node.
type Client struct {
	Host    string
	Port    int
	User    string
	KeyPath string
	// Profile names the machine in messages; empty means the name of KeyPath's directory,
	// which is the profile for every machine directory mkube makes.
	Profile string
	// KnownHosts is where the node's host key is pinned; empty means known_hosts beside KeyPath
	// (the machine directory). A user's own key (the ssh driver's --ssh-key) sets it, so mkube
	// never writes beside the user's key.
	KnownHosts string
	// Up says the machine is already up (the ssh driver's): a refused login is final, where a
	// booting VM's may only mean its key is not in place yet.
	Up bool
}

// handshakeTimeout bounds one SSH handshake attempt: a port forwarded by a hypervisor's NAT
// accepts TCP before the guest's sshd is up and may then say nothing, and such an attempt is
// better abandoned and retried than waited on until the caller's deadline.
const handshakeTimeout = 15 * time.Second

// Dial connects, retrying while the node boots, until ctx ends. The node's host key is pinned on
// first use (see ForgetHostKey); a changed key fails at once with a *HostKeyChangedError.
func (c Client) Dial(ctx context.Context) (*gossh.Client, error) {
	raw, err := os.ReadFile(c.KeyPath)
	if err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.KeyPath, err)
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	profile := c.Profile
	if profile == "" {
		profile = filepath.Base(filepath.Dir(c.KeyPath))
	}
	known := c.KnownHosts
	if known == "" {
		known = knownHostsFile(c.KeyPath)
	}
	pin := &hostKeyPin{file: known, profile: profile, addr: addr}
	cfg := &gossh.ClientConfig{
		User:            c.User,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: pin.check,
	}
	// Try at once, then after 100ms, doubling to at most 2s between attempts, until ctx ends.
	retry := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: 2 * time.Second, Steps: math.MaxInt32}
	var (
		cl      *gossh.Client
		lastErr error
	)
	err = retry.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		var err error
		cl, err = handshake(ctx, addr, cfg)
		if err == nil {
			if err := pin.record(); err != nil {
				cl.Close()
				return false, err
			}
			return true, nil
		}
		var changed *HostKeyChangedError
		if errors.As(err, &changed) {
			return false, changed // one clear line, and no point in retrying
		}
		var pinErr *knownHostsError
		if errors.As(err, &pinErr) {
			return false, pinErr
		}
		if c.Up && strings.Contains(err.Error(), "unable to authenticate") {
			return false, fmt.Errorf("ssh %s@%s: the login was refused (%w)", c.User, addr, err)
		}
		lastErr = err
		return false, nil
	})
	switch {
	case err == nil:
		return cl, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("ssh %s@%s: %w", c.User, addr, errors.Join(err, lastErr))
	default:
		return nil, err
	}
}

// handshake makes one connection attempt. gossh.NewClientConn knows no context, so the
// connection carries a deadline (ctx's or handshakeTimeout, whichever is sooner) and is closed
// if ctx ends first: a server that accepts TCP and never speaks SSH cannot hold the caller.
func handshake(ctx context.Context, addr string, cfg *gossh.ClientConfig) (*gossh.Client, error) {
	actx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(actx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := actx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	stop := context.AfterFunc(actx, func() { conn.Close() })
	sc, chans, reqs, err := gossh.NewClientConn(conn, addr, cfg)
	if !stop() {
		// actx ended during the handshake and the conn is (being) closed, whatever it returned.
		if sc != nil {
			sc.Close()
		}
		return nil, errors.Join(actx.Err(), err)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The session outlives the handshake: lift the deadline.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		sc.Close()
		return nil, err
	}
	return gossh.NewClient(sc, chans, reqs), nil
}

// Quote makes args safe to pass through the remote shell.
func Quote(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// Runner is a driver.Runner over SSH. Commands run as root through sudo, as the bootstrapper needs.
type Runner struct {
	Client *gossh.Client
	// AsLogin runs commands as the login user itself, without sudo: the login is root on a host
	// that may have no sudo at all (the ssh driver's --ssh-user=root), or a check must see what
	// the user may do before relying on sudo.
	AsLogin bool
}

// Run runs cmd in the node.
func (r *Runner) Run(ctx context.Context, cmd driver.Cmd) error {
	s, err := r.Client.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	var stderr bytes.Buffer
	s.Stdin = cmd.Stdin
	s.Stdout = cmd.Stdout
	s.Stderr = &stderr
	if cmd.Stderr != nil {
		s.Stderr = io.MultiWriter(&stderr, cmd.Stderr)
	}
	done := make(chan error, 1)
	line := Quote(cmd.Args)
	if !r.AsLogin {
		line = "sudo " + line
	}
	go func() { done <- s.Run(line) }()
	select {
	case <-ctx.Done():
		s.Signal(gossh.SIGKILL)
		return ctx.Err()
	case err := <-done:
		var exit *gossh.ExitError
		if errors.As(err, &exit) {
			return &driver.ExitError{Args: cmd.Args, Code: exit.ExitStatus(), Stderr: stderr.String()}
		}
		return err
	}
}

// Close ends the SSH connection.
func (r *Runner) Close() error { return r.Client.Close() }

// TempSuffix names the file WriteFile writes before renaming it into place: an interrupted write
// leaves PATH+TempSuffix, which whoever removes PATH removes too.
const TempSuffix = ".mkube-tmp"

// WriteFile streams content to path through the remote shell.
func (r *Runner) WriteFile(ctx context.Context, path string, mode int64, _ int64, content io.Reader) error {
	p, tmp := Quote([]string{path}), Quote([]string{path + TempSuffix})
	script := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && mv %s %s",
		Quote([]string{filepath.Dir(path)}), tmp, mode, tmp, tmp, p)
	return r.Run(ctx, driver.Cmd{Args: []string{"sh", "-c", script}, Stdin: content})
}

// DialNode connects a Runner to one node of a profile over SSH, retrying for up to five minutes
// while it boots: what every VM driver's Runner is. The profile's nodes share its login key in
// machineDir (KeyFile); each has host keys of its own, pinned in NodeKnownHosts.
func DialNode(ctx context.Context, ep driver.Endpoint, machineDir, profile, node string) (*Runner, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	key := KeyFile(machineDir)
	cl, err := Client{Host: ep.SSHHost, Port: ep.SSHPort, User: ep.SSHUser, KeyPath: key, KnownHosts: NodeKnownHosts(key, profile, node)}.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &Runner{Client: cl}, nil
}

// NodeKnownHosts is where a node's host keys are pinned: known_hosts beside the profile's key for
// its primary node, known_hosts-<node> for the others.
func NodeKnownHosts(keyPath, profile, node string) string {
	if node == "" || node == profile {
		return knownHostsFile(keyPath)
	}
	return knownHostsFile(keyPath) + "-" + node
}
