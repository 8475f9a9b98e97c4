package drivertest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"mkube/pkg/driver"
)

// Log is what fakes were asked, in order, one line each: the transcript tests compare with
// golden files. It is shared by a fake driver, its runners and whatever else a test records.
type Log struct {
	mu    sync.Mutex
	lines []string
}

// Add records a line.
func (l *Log) Add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// Take returns the lines recorded since the last Take.
func (l *Log) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// Node is the fake machine's insides: the files written into it (so `cat` and `test -f` of a
// marker answer as a real node would) and canned answers for other commands.
type Node struct {
	mu    sync.Mutex
	files map[string][]byte
	// Reply answers a command that is not cat/test/rm of a file: stdout and exit code. Nil answers
	// everything with no output and exit 0.
	Reply func(args []string) (stdout string, code int)
	// Stderr is what a command that exits non-zero says on stderr (its ExitError's Stderr); nil: nothing.
	Stderr func(args []string) string
}

func (n *Node) file(path string) ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, ok := n.files[path]
	return b, ok
}

func (n *Node) setFile(path string, b []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.files == nil {
		n.files = map[string][]byte{}
	}
	n.files[path] = b
}

// Driver is a fake driver.Driver with a state machine (Nonexistent → Running ⇄ Stopped) that
// records its calls in Log. Its runners run nothing: they record commands and answer from Node.
type Driver struct {
	Log    *Log
	Node   *Node
	EP     driver.Endpoint
	mu     sync.Mutex
	state  driver.State
	open   int // runners not closed
	closed bool
}

// NewDriver makes a fake driver whose machine does not exist yet.
func NewDriver(log *Log) *Driver {
	return &Driver{Log: log, Node: &Node{}, state: driver.Nonexistent, EP: driver.Endpoint{
		IP: "192.168.49.2", SSHHost: "127.0.0.1", SSHPort: 32772, SSHUser: "docker",
		APIServerHost: "127.0.0.1", APIServerPort: 32771, NodeReachable: true}}
}

func (d *Driver) Name() string { return "fake" }

func (d *Driver) set(call string, st driver.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("fake driver: %s after Close", call)
	}
	d.Log.Add("driver: %s", call)
	d.state = st
	return nil
}

func (d *Driver) Create(ctx context.Context, s driver.Spec) error {
	call := fmt.Sprintf("create %s cpus=%d memory=%dMB disk=%dMB image=%s apiserver-port=%d", s.Name, s.CPUs, s.MemoryMB, s.DiskMB, s.Image, s.APIServerPort)
	if s.NodeFiles != nil { // read whole, as a driver installing from them would
		if err := s.NodeFiles(ctx, io.Discard); err != nil {
			return fmt.Errorf("fake driver: node files: %w", err)
		}
		call += " node-files=read"
	}
	return d.set(call, driver.Running)
}
func (d *Driver) Start(context.Context) error  { return d.set("start", driver.Running) }
func (d *Driver) Stop(context.Context) error   { return d.set("stop", driver.Stopped) }
func (d *Driver) Delete(context.Context) error { return d.set("delete", driver.Nonexistent) }

// State is not logged: commands ask it often, and how often is not what a transcript is for.
func (d *Driver) State(context.Context) (driver.State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", fmt.Errorf("fake driver: State after Close")
	}
	return d.state, nil
}

func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	st, err := d.State(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if st != driver.Running {
		return driver.Endpoint{}, fmt.Errorf("fake machine is %s", st)
	}
	return d.EP, nil
}

// Runner opens a fake runner; Open says how many are not closed yet.
func (d *Driver) Runner(context.Context) (driver.Runner, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("fake driver: Runner after Close")
	}
	if d.state != driver.Running {
		return nil, fmt.Errorf("fake machine is %s", d.state)
	}
	d.open++
	return &Runner{d: d}, nil
}

// Close marks the driver closed; it fails if a runner is still open (a leak in the caller).
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.open != 0 {
		return fmt.Errorf("fake driver closed with %d runners open", d.open)
	}
	return nil
}

// Leaks says what a command left open: runners, or the driver itself.
func (d *Driver) Leaks() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var l []string
	if d.open != 0 {
		l = append(l, fmt.Sprintf("%d runners open", d.open))
	}
	if !d.closed {
		l = append(l, "driver not closed")
	}
	return strings.Join(l, ", ")
}

// Reopen lets the next command use the driver again (a real command builds a new one).
func (d *Driver) Reopen() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = false
}

// Runner is a fake driver.Runner. Like a docker runner, which uses its driver's client, it fails
// once it or its driver is closed.
type Runner struct {
	d      *Driver
	closed bool // guarded by d.mu
}

// usable says why the runner cannot be used, or nil.
func (r *Runner) usable(op string) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	switch {
	case r.closed:
		return fmt.Errorf("fake runner: %s after Close", op)
	case r.d.closed:
		return fmt.Errorf("fake runner: %s after its driver's Close", op)
	}
	return nil
}

func (r *Runner) Run(_ context.Context, cmd driver.Cmd) error {
	if err := r.usable("run"); err != nil {
		return err
	}
	line := strings.Join(cmd.Args, " ")
	if cmd.Stdin != nil {
		io.Copy(io.Discard, cmd.Stdin)
		line += " <stdin"
	}
	r.d.Log.Add("run: %s", line)
	stdout, code := r.answer(cmd.Args)
	if cmd.Stdout != nil {
		io.WriteString(cmd.Stdout, stdout)
	}
	if code != 0 {
		e := &driver.ExitError{Args: cmd.Args, Code: code}
		if r.d.Node.Stderr != nil {
			e.Stderr = r.d.Node.Stderr(cmd.Args)
		}
		return e
	}
	return nil
}

// answer plays a node: cat and test of files written before, rm of them, the rest from Reply.
func (r *Runner) answer(args []string) (string, int) {
	n := r.d.Node
	switch {
	case len(args) == 2 && args[0] == "cat":
		if b, ok := n.file(args[1]); ok {
			return string(b), 0
		}
		return "", 1
	case len(args) == 3 && args[0] == "test" && slices.Contains([]string{"-f", "-e"}, args[1]):
		if _, ok := n.file(args[2]); ok {
			return "", 0
		}
		return "", 1
	case len(args) >= 2 && args[0] == "touch":
		for _, p := range args[1:] {
			n.setFile(p, nil)
		}
		return "", 0
	case len(args) == 3 && args[0] == "rm" && args[1] == "-f":
		n.mu.Lock()
		delete(n.files, args[2])
		n.mu.Unlock()
		return "", 0
	case n.Reply != nil:
		return n.Reply(args)
	}
	return "", 0
}

func (r *Runner) WriteFile(_ context.Context, path string, mode int64, _ int64, content io.Reader) error {
	if err := r.usable("write"); err != nil {
		return err
	}
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	r.d.Log.Add("write: %s (%o)", path, mode)
	r.d.Node.setFile(path, b)
	return nil
}

func (r *Runner) Close() error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.d.open--
	return nil
}

// Applier records the addons a command applies and removes (it has cluster.Applier's methods).
type Applier struct{ Log *Log }

func (a Applier) Apply(_ context.Context, name string, _ []byte) error {
	a.Log.Add("apply addon %s (server-side, from the host)", name)
	return nil
}

func (a Applier) Remove(_ context.Context, name string, _ []byte) error {
	a.Log.Add("remove addon %s (from the host)", name)
	return nil
}
