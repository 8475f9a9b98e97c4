// Command mkube runs a local Kubernetes cluster. See pkg/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"mkube/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
