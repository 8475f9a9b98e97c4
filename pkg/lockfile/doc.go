// Package lockfile serialises processes working on the same file or profile: the kubeconfig, and
// a profile's lifecycle (two `mkube start -p X` at once would fight over one machine).
package lockfile
