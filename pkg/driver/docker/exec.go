package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/util/wait"

	"mkube/pkg/driver"
)

// execRunner runs commands in the node container through the Docker API (docker exec). Its client
// is the driver's: Driver.Close closes it.
type execRunner struct {
	cli       *client.Client
	container string
}

// Run runs cmd, streaming stdin in and stdout/stderr out; a non-zero exit is an error with the
// command's stderr (its last lines) in it.
func (r *execRunner) Run(ctx context.Context, cmd driver.Cmd) error {
	exec, err := r.cli.ExecCreate(ctx, r.container, client.ExecCreateOptions{
		Cmd: cmd.Args, AttachStdin: cmd.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("exec %s: %w", strings.Join(cmd.Args, " "), err)
	}
	att, err := r.cli.ExecAttach(ctx, exec.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	defer att.Close()
	var stderr bytes.Buffer
	stdout := cmd.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	errw := io.Writer(&stderr)
	if cmd.Stderr != nil {
		errw = io.MultiWriter(&stderr, cmd.Stderr)
	}
	copyErr := make(chan error, 1)
	if cmd.Stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, cmd.Stdin)
			att.CloseWrite()
			copyErr <- err
		}()
	} else {
		copyErr <- nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, errw, att.Reader)
		done <- err
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		if err != nil {
			return err
		}
	}
	if err := <-copyErr; err != nil {
		return fmt.Errorf("exec %s: writing stdin: %w", cmd.Args[0], err)
	}
	// The stream closes a moment before Docker records the exit code: asked at once, then again
	// 5ms, 10ms, 15ms, … after each answer that it still runs.
	var code int
	err = linearDelay(5*time.Millisecond).Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		ins, err := r.cli.ExecInspect(ctx, exec.ID, client.ExecInspectOptions{})
		if err != nil {
			return false, err
		}
		code = ins.ExitCode
		return !ins.Running, nil
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return &driver.ExitError{Args: cmd.Args, Code: code, Stderr: stderr.String()}
	}
	return nil
}

// linearDelay waits step, 2×step, 3×step, … between tries.
func linearDelay(step time.Duration) wait.DelayFunc {
	n := time.Duration(0)
	return func() time.Duration {
		n++
		return n * step
	}
}

// WriteFile copies content into the container through the archive API. Paths on the node's tmpfs
// mounts (/tmp, /run) do not work this way (Docker writes beneath the mount); callers use /var,
// /etc or /usr.
func (r *execRunner) WriteFile(ctx context.Context, dst string, mode int64, size int64, content io.Reader) error {
	if strings.HasPrefix(dst, "/tmp/") || strings.HasPrefix(dst, "/run/") {
		return fmt.Errorf("cannot copy to %s: it is on a tmpfs in the node", dst)
	}
	if err := r.Run(ctx, driver.Cmd{Args: []string{"mkdir", "-p", path.Dir(dst)}}); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: path.Base(dst), Mode: mode, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, content)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := r.cli.CopyToContainer(ctx, r.container, client.CopyToContainerOptions{DestinationPath: path.Dir(dst), Content: pr})
	return err
}

// Close does nothing: the Docker client is the driver's, closed with it.
func (r *execRunner) Close() error { return nil }
