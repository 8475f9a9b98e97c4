package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"mkube/pkg/driver"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
)

// Tunnel forwards ports on 127.0.0.1 to addresses inside the node over one SSH connection, for
// hosts that cannot reach the node's address themselves. It lives until Close or its context ends.
type Tunnel struct {
	client    *gossh.Client
	mu        sync.Mutex
	listeners []net.Listener
}

func (m *Manager) openTunnel(ctx context.Context, profile string, ep driver.Endpoint) (*Tunnel, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sc, err := m.sshClient(profile, ep)
	if err != nil {
		return nil, err
	}
	c, err := sc.Dial(dctx)
	if err != nil {
		return nil, sshError(err)
	}
	t := &Tunnel{client: c}
	go func() {
		<-ctx.Done()
		t.Close()
	}()
	return t, nil
}

// Forward listens on a free port of 127.0.0.1 and relays each connection to host:port as seen from
// inside the node; it returns the local port.
func (t *Tunnel) Forward(ctx context.Context, host string, port int32) (int32, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	t.listeners = append(t.listeners, ln)
	t.mu.Unlock()
	target := net.JoinHostPort(host, fmt.Sprint(port))
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed
			}
			go t.relay(conn, target)
		}
	}()
	return int32(ln.Addr().(*net.TCPAddr).Port), nil
}

func (t *Tunnel) relay(local net.Conn, target string) {
	defer local.Close()
	remote, err := t.client.Dial("tcp", target)
	if err != nil {
		return
	}
	defer remote.Close()
	done := make(chan struct{}, 2)
	cp := func(dst io.Writer, src io.Reader) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(remote, local)
	go cp(local, remote)
	<-done // either side finished: closing both (deferred) ends the other copy
}

// Close stops forwarding. A nil tunnel is fine to close.
func (t *Tunnel) Close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ln := range t.listeners {
		ln.Close()
	}
	t.listeners = nil
	t.client.Close()
}

// sshError is a failed SSH dial for the user: a changed host key says what to do itself; anything
// else is most likely a node whose SSH server is not up.
func sshError(err error) error {
	var changed *ssh.HostKeyChangedError
	if errors.As(err, &changed) {
		return reason.New(reason.GuestError, err, "")
	}
	return reason.New(reason.GuestError, err, "is the node's SSH server running? see `mkube logs`")
}
