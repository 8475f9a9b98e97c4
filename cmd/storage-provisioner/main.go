// Command storage-provisioner runs mkube's hostPath provisioner inside the cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"mkube/pkg/hostpath"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "storage-provisioner:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", hostpath.DefaultRoot, "directory on the node that holds the volumes")
	name := flag.String("provisioner", hostpath.Name, "provisioner name that StorageClasses refer to")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// The node's name (from the downward API) stays the same across pod restarts, unlike the pod's.
	identity := os.Getenv("NODE_NAME")
	if identity == "" {
		identity = "default"
	}
	p := &hostpath.Provisioner{Root: *root, Identity: identity}
	// One replica on one node: leader election would only add a startup delay.
	pc := controller.NewProvisionController(ctx, client, *name, p, controller.LeaderElection(false))
	pc.Run(ctx)
	return nil
}
