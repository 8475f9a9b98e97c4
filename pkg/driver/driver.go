// Package driver is the seam between mkube and the hypervisors that boot a node: a Driver creates,
// starts, stops and deletes one machine, tells its state and addresses, and gives a Runner that
// runs commands in it. A Registry knows every driver, ranks them and explains unhealthy ones.
package driver

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// State of a machine, as `mkube status` shows it (minikube's words).
type State string

const (
	Running     State = "Running"
	Stopped     State = "Stopped"
	Paused      State = "Paused"
	Starting    State = "Starting"
	Nonexistent State = "Nonexistent"
	Error       State = "Error"
)

// Spec is what a machine is created with.
type Spec struct {
	Name string // profile name: machine, network and volume names derive from it
	// Ordinal is the node's place in its cluster (1, or 0, for the primary): drivers that give
	// nodes fixed addresses derive them from it.
	Ordinal  int
	CPUs     int
	MemoryMB int
	DiskMB   int
	Image    string // node image (docker) or ISO path (VM drivers)
	// Ports the node serves that the host must reach on 127.0.0.1 (the API server, SSH). 0 for a
	// worker: it serves no API server.
	APIServerPort int
	SSHPublicKey  string // authorized for the node's login user
	// NodeFiles writes the node image's root file system as a tar stream, for drivers that install
	// mkube's container runtime from it onto a machine that already runs Linux (Entry.NodeFiles:
	// ssh); nil for the others.
	NodeFiles func(ctx context.Context, w io.Writer) error
}

// Endpoint is how the host reaches a running machine.
type Endpoint struct {
	IP      string // the node's address (what `mkube ip` prints)
	SSHHost string
	SSHPort int
	SSHUser string
	// SSHKey is the private key the host logs in with when the machine is the user's own (ssh):
	// mkube neither makes nor authorizes a key there. Empty means the machine's own key, which start
	// authorizes for the node's login user.
	SSHKey        string
	APIServerHost string // where the host reaches the API server
	APIServerPort int
	// NodeReachable says the host can open connections to IP itself (a Linux host's Docker bridge,
	// a VM's host-only network). When false, node ports are reached through an SSH tunnel.
	NodeReachable bool
}

// LBBackend is one control plane behind an --ha cluster's API server load balancer.
type LBBackend struct {
	Name string
	IP   string
}

// Driver manages one machine. Every method that can block takes a context. Create is idempotent:
// it finishes whatever an interrupted Create left half done.
type Driver interface {
	Name() string
	Create(ctx context.Context, spec Spec) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Delete(ctx context.Context) error
	State(ctx context.Context) (State, error)
	Endpoint(ctx context.Context) (Endpoint, error)
	Runner(ctx context.Context) (Runner, error)
	// Close lets go of the driver's connections (a Docker or libvirt client); the machine is not
	// touched. A closed driver is not used again.
	Close() error
}

// Cmd is a command to run in a machine.
type Cmd struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Runner runs commands and writes files in a machine: docker exec for containers, SSH for VMs.
type Runner interface {
	// Run runs a command and waits for it; a non-zero exit is an error carrying its stderr.
	Run(ctx context.Context, cmd Cmd) error
	// WriteFile writes r to path in the machine with mode, creating parent directories.
	WriteFile(ctx context.Context, path string, mode int64, size int64, r io.Reader) error
	// Close ends the runner's connection (an SSH client); commands still running end with it.
	Close() error
}

// ExitError is a command that ran in the machine and exited non-zero.
type ExitError struct {
	Args   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	head := fmt.Sprintf("%s: exit status %d", strings.Join(e.Args, " "), e.Code)
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return head
	}
	// The last line of stderr is usually the command's own error: it goes on the first line,
	// which is the one a failure shows without -v; the lines before it follow.
	lines := strings.Split(msg, "\n")
	last := lines[len(lines)-1]
	lines = lines[max(0, len(lines)-15) : len(lines)-1]
	if len(lines) == 0 {
		return head + ": " + last
	}
	return head + ": " + last + "\n" + strings.Join(lines, "\n")
}
