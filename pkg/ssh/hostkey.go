package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"mkube/pkg/atomicfile"
)

// Host keys are pinned trust-on-first-use, one known_hosts file per machine, kept beside the
// machine's private key: the first handshake that also authenticates (so the server holds the
// key mkube put in it) records the node's host key; later handshakes must present it again.
//
// The pin is per machine, not per address. A VM's DHCP address or a port published on loopback
// may change between starts while the machine stays the same, so a key already pinned for the
// machine is accepted at any address (and that address is added to the file), while a machine
// whose file holds keys but none of them matches is refused, whatever the address. Lines are
// written in OpenSSH's format, so `ssh -o UserKnownHostsFile=...` reads the same file.

// knownHostsFile is where the host keys of the machine owning keyPath are pinned.
func knownHostsFile(keyPath string) string {
	return filepath.Join(filepath.Dir(keyPath), "known_hosts")
}

// knownHostsMu serialises the read-modify-write of known_hosts files within this process (a
// start may dial the runner and a tunnel at once); the atomic rename keeps other processes from
// ever seeing a torn file.
var knownHostsMu sync.Mutex

// ForgetHostKey removes the host keys pinned for the machine owning keyPath, so the next dial
// pins whatever key the node presents. Call it when mkube itself creates a new machine (which
// generates new host keys) under an existing machine directory. A missing file is not an error.
func ForgetHostKey(keyPath string) error {
	return ForgetKnownHosts(knownHostsFile(keyPath))
}

// ForgetKnownHosts is ForgetHostKey for a known_hosts file of its own (another node of a profile
// that shares the machine directory and its login key).
func ForgetKnownHosts(file string) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// HostKeyChangedError is a node presenting a host key other than the one pinned for its
// machine: the machine was recreated behind mkube's back, or something else answers on its
// address. Dial fails at once with it rather than retrying, as waiting will not change the key.
type HostKeyChangedError struct {
	Profile string // the machine (profile) name
	Addr    string // host:port dialled
	Want    string // fingerprint(s) pinned, SHA256:...
	Got     string // fingerprint presented
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("the SSH host key of the node %s/%s changed (expected %s, got %s): if you recreated the machine outside mkube, run mkube delete -p %s and start again",
		e.Profile, e.Addr, e.Want, e.Got, e.Profile)
}

// knownHostsError is a known_hosts file mkube cannot read or write. Like a changed key it ends a
// dial at once: retrying while "the node boots" would only repeat it.
type knownHostsError struct{ err error }

func (e *knownHostsError) Error() string { return "pinned SSH host keys: " + e.err.Error() }
func (e *knownHostsError) Unwrap() error { return e.err }

// pinned is what a known_hosts file says.
type pinned struct {
	keys  []gossh.PublicKey
	hosts []string // every host pattern listed, as written
}

func (p pinned) has(key gossh.PublicKey) bool {
	return slices.ContainsFunc(p.keys, func(k gossh.PublicKey) bool {
		return bytes.Equal(k.Marshal(), key.Marshal())
	})
}

func (p pinned) fingerprints() string {
	var fps []string
	for _, k := range p.keys {
		if fp := gossh.FingerprintSHA256(k); !slices.Contains(fps, fp) {
			fps = append(fps, fp)
		}
	}
	return strings.Join(fps, " or ")
}

// readPinned parses file; a missing file pins nothing. Marked lines (@revoked, @cert-authority)
// are never written by mkube and are skipped rather than half-honoured.
func readPinned(file string) (pinned, error) {
	var p pinned
	raw, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	for rest := raw; len(rest) > 0; {
		marker, hosts, key, _, next, err := gossh.ParseKnownHosts(rest)
		if err == io.EOF {
			break
		}
		if err != nil {
			// A corrupt pin must not quietly turn into "nothing pinned" and a fresh first use.
			return p, fmt.Errorf("%s: %w (remove the file to pin the node's key again)", file, err)
		}
		rest = next
		if marker != "" {
			continue
		}
		p.keys = append(p.keys, key)
		p.hosts = append(p.hosts, hosts...)
	}
	return p, nil
}

// hostKeyPin checks one handshake's host key against the machine's pins; record is called after
// the handshake has also authenticated.
type hostKeyPin struct {
	file    string
	profile string
	addr    string
	seen    gossh.PublicKey // what the server presented in the last handshake
}

// check is the handshake's HostKeyCallback.
func (h *hostKeyPin) check(_ string, _ net.Addr, key gossh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	p, err := readPinned(h.file)
	if err != nil {
		return &knownHostsError{err}
	}
	if len(p.keys) > 0 && !p.has(key) {
		return &HostKeyChangedError{Profile: h.profile, Addr: h.addr, Want: p.fingerprints(), Got: gossh.FingerprintSHA256(key)}
	}
	h.seen = key
	return nil
}

// record pins the key seen in a handshake that succeeded, for the address dialled, unless the
// file already lists both.
func (h *hostKeyPin) record() error {
	if h.seen == nil {
		return nil
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	p, err := readPinned(h.file)
	if err != nil {
		return &knownHostsError{err}
	}
	host := knownhosts.Normalize(h.addr)
	if len(p.keys) > 0 && !p.has(h.seen) {
		// Forgotten and re-pinned by another dial between check and record: refuse rather
		// than pin two keys.
		return &HostKeyChangedError{Profile: h.profile, Addr: h.addr, Want: p.fingerprints(), Got: gossh.FingerprintSHA256(h.seen)}
	}
	if p.has(h.seen) && slices.Contains(p.hosts, host) {
		return nil
	}
	raw, err := os.ReadFile(h.file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &knownHostsError{err}
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = append(raw, '\n')
	}
	raw = append(raw, knownhosts.Line([]string{h.addr}, h.seen)+"\n"...)
	if err := atomicfile.WriteBytes(h.file, raw, 0o600); err != nil {
		return &knownHostsError{err}
	}
	return nil
}
