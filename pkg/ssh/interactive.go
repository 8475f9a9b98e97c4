package ssh

import (
	"context"
	"errors"
	"io"
	"os"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Session runs a command (or a login shell when args is empty) with the caller's stdio, as `ssh`
// does: with a terminal when stdin is one. It returns the remote exit code.
func Session(ctx context.Context, c *gossh.Client, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := c.NewSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil {
			w, h = 80, 24
		}
		termType := os.Getenv("TERM")
		if termType == "" {
			termType = "xterm-256color"
		}
		if err := s.RequestPty(termType, h, w, gossh.TerminalModes{gossh.ECHO: 1}); err != nil {
			return 0, err
		}
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return 0, err
		}
		defer term.Restore(int(f.Fd()), old)
		stop := watchResize(func() {
			if w, h, err := term.GetSize(int(f.Fd())); err == nil {
				s.WindowChange(h, w)
			}
		})
		defer stop()
	}
	if len(args) == 0 {
		err = s.Shell()
		if err == nil {
			err = s.Wait()
		}
	} else {
		err = s.Run(commandLine(args))
	}
	var exit *gossh.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus(), nil
	}
	if err != nil {
		var missing *gossh.ExitMissingError
		if errors.As(err, &missing) {
			return 255, nil
		}
		return 0, err
	}
	return 0, nil
}

// commandLine is what the remote shell runs: one argument is a command line, as with minikube
// (`mkube ssh "sudo ls /"`); several are words, each kept whole (`mkube ssh -- sh -c "exit 3"`).
func commandLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return Quote(args)
}
