package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// sshServer is an in-process SSH server on 127.0.0.1 presenting *hostKey (read per connection,
// so a test can "recreate the machine" at the same address) and accepting the client key
// authorized; it completes handshakes and refuses every channel.
func sshServer(t *testing.T, hostKey *atomic.Pointer[gossh.Signer], authorized gossh.PublicKey) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveSSH(t, ln, hostKey, authorized)
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// serveSSH runs sshServer's server on ln until the test ends.
func serveSSH(t *testing.T, ln net.Listener, hostKey *atomic.Pointer[gossh.Signer], authorized gossh.PublicKey) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cfg := &gossh.ServerConfig{
				PublicKeyCallback: func(_ gossh.ConnMetadata, k gossh.PublicKey) (*gossh.Permissions, error) {
					if string(k.Marshal()) == string(authorized.Marshal()) {
						return nil, nil
					}
					return nil, errors.New("unknown key")
				},
			}
			cfg.AddHostKey(*hostKey.Load())
			go func() {
				defer c.Close()
				_, chans, reqs, err := gossh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go gossh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(gossh.Prohibited, "test server")
				}
			}()
		}
	}()
}

func newHostKey(t *testing.T) *atomic.Pointer[gossh.Signer] {
	t.Helper()
	var p atomic.Pointer[gossh.Signer]
	s := signer(t)
	p.Store(&s)
	return &p
}

func signer(t *testing.T) gossh.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// machine makes a machine directory named like a profile, holding a client key pair.
func machine(t *testing.T) (keyPath string, authorized gossh.PublicKey) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "machines", "demo")
	priv, line, err := EnsureKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func dial(keyPath, host string, port int, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Client{Host: host, Port: port, User: "docker", KeyPath: keyPath}.Dial(ctx)
	if err == nil {
		c.Close()
	}
	return err
}

func TestHostKeyPinnedOnFirstUse(t *testing.T) {
	keyPath, authorized := machine(t)
	first := newHostKey(t)
	host, port := sshServer(t, first, authorized)
	kh := filepath.Join(filepath.Dir(keyPath), "known_hosts")

	if err := dial(keyPath, host, port, 10*time.Second); err != nil {
		t.Fatalf("first dial: %v", err)
	}
	st, err := os.Stat(kh)
	if err != nil {
		t.Fatalf("first dial pinned nothing: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(kh)
	_, hosts, key, _, _, err := gossh.ParseKnownHosts(raw)
	if err != nil || string(key.Marshal()) != string((*first.Load()).PublicKey().Marshal()) {
		t.Fatalf("known_hosts %q does not pin the server's key (%v)", raw, err)
	}
	if want := "[127.0.0.1]:"; len(hosts) != 1 || !strings.HasPrefix(hosts[0], want) {
		t.Errorf("pinned for %q, want %s<port>", hosts, want)
	}

	// The same key again is fine, and adds nothing.
	if err := dial(keyPath, host, port, 10*time.Second); err != nil {
		t.Fatalf("second dial, same key: %v", err)
	}
	if again, _ := os.ReadFile(kh); string(again) != string(raw) {
		t.Errorf("known_hosts rewritten for a known key:\n%s", again)
	}

	// The same machine at another address (a new DHCP lease, another published port) keeps its
	// pin: its key is accepted there and the address recorded.
	_, port2 := sshServer(t, first, authorized)
	if err := dial(keyPath, host, port2, 10*time.Second); err != nil {
		t.Fatalf("same key, new port: %v", err)
	}
	if again, _ := os.ReadFile(kh); strings.Count(string(again), "\n") != 2 {
		t.Errorf("known_hosts after a new address:\n%s", again)
	}
}

func TestHostKeyChangedRefusedAtOnce(t *testing.T) {
	keyPath, authorized := machine(t)
	key := newHostKey(t)
	first, second := *key.Load(), signer(t)
	host, port := sshServer(t, key, authorized)
	if err := dial(keyPath, host, port, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The machine is recreated behind mkube's back: same address, new host key. Another
	// address with that key is refused too, as the pin belongs to the machine.
	key.Store(&second)
	_, port2 := sshServer(t, key, authorized)
	for _, p := range []int{port, port2} {
		start := time.Now()
		err := dial(keyPath, host, p, 30*time.Second)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a changed key took %s to fail: it must not be retried", took)
		}
		var changed *HostKeyChangedError
		if !errors.As(err, &changed) {
			t.Fatalf("dial with a changed key: %v, want a HostKeyChangedError", err)
		}
		msg := err.Error()
		for _, want := range []string{
			"the SSH host key of the node demo/127.0.0.1:" + strconv.Itoa(p) + " changed",
			"(expected " + gossh.FingerprintSHA256(first.PublicKey()) + ", got " + gossh.FingerprintSHA256(second.PublicKey()) + ")",
			": if you recreated the machine outside mkube, run mkube delete -p demo and start again",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("message is not one line: %q", msg)
		}
	}

	// Once mkube forgets the pin (it made a new machine itself), the new key is pinned.
	if err := ForgetHostKey(keyPath); err != nil {
		t.Fatal(err)
	}
	if err := ForgetHostKey(keyPath); err != nil {
		t.Errorf("forgetting twice: %v", err)
	}
	if err := dial(keyPath, host, port, 10*time.Second); err != nil {
		t.Fatalf("dial after ForgetHostKey: %v", err)
	}
	key.Store(&first)
	if err := dial(keyPath, host, port, 10*time.Second); err == nil {
		t.Error("the old key is accepted after a new one was pinned")
	}
}

// silentServer accepts TCP and never says a word, like a NAT port forward to a guest that is not
// up; it returns its address.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

// freeAddr is an address on which nothing listens (yet): connections are refused.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return ln.Addr().String()
}

func dialAddr(keyPath, addr string, wait time.Duration) error {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return dial(keyPath, host, p, wait)
}

// TestDialHonoursContext: a node that does not answer SSH fails the dial when ctx ends, with ctx's
// error and the last attempt's, and pins nothing.
func TestDialHonoursContext(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr func(*testing.T) string
		wait time.Duration
		last string // in the message, from the last attempt (the one at 700ms for a 1s wait)
	}{
		{"server is silent", silentServer, 300 * time.Millisecond, ""},
		{"port refuses", freeAddr, time.Second, "refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keyPath, _ := machine(t)
			addr := tt.addr(t)
			start := time.Now()
			err := dialAddr(keyPath, addr, tt.wait)
			if took := time.Since(start); took > tt.wait+2*time.Second {
				t.Errorf("dial took %s past a %s context", took, tt.wait)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("dial: %v, want the context's deadline", err)
			}
			if msg := fmt.Sprint(err); !strings.HasPrefix(msg, "ssh docker@"+addr+": ") || !strings.Contains(msg, tt.last) {
				t.Errorf("dial: %q, want the address and %q", msg, tt.last)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(keyPath), "known_hosts")); err == nil {
				t.Error("a failed dial pinned a key")
			}
		})
	}
}

func TestDialRetriesWhileTheNodeBoots(t *testing.T) {
	keyPath, authorized := machine(t)
	addr := freeAddr(t) // the node's sshd is not up yet
	hostKey := newHostKey(t)
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		time.Sleep(700 * time.Millisecond) // a few refused attempts (100ms, 200ms, 400ms apart)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		serveSSH(t, ln, hostKey, authorized)
	}()
	if err := dialAddr(keyPath, addr, 20*time.Second); err != nil {
		t.Fatalf("dial while the node boots: %v", err)
	}
}

// A user's own key (the ssh driver's) pins the host key where KnownHosts says, never beside the
// key; with Up, a refused login fails at once instead of being retried as a booting node's.
func TestUserKeyPinsInTheMachineDir(t *testing.T) {
	userKey, authorized := machine(t) // stands for ~/.ssh/id_ed25519
	known := filepath.Join(t.TempDir(), "machines", "demo", "known_hosts")
	host, port := sshServer(t, newHostKey(t), authorized)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Client{Host: host, Port: port, User: "root", KeyPath: userKey, KnownHosts: known, Up: true}.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(known); err != nil {
		t.Errorf("nothing pinned at KnownHosts: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(userKey), "known_hosts")); err == nil {
		t.Error("a known_hosts written beside the user's key")
	}

	otherKey, _ := machine(t) // not authorized
	start := time.Now()
	_, err = Client{Host: host, Port: port, User: "root", KeyPath: otherKey, KnownHosts: known, Up: true}.Dial(ctx)
	if err == nil || !strings.Contains(err.Error(), "the login was refused") || time.Since(start) > 5*time.Second {
		t.Errorf("a refused login on a machine that is up: %v after %s", err, time.Since(start))
	}
}
