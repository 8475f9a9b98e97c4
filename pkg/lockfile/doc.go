// Package lockfile serialises mkube processes working on the same state: a profile's lifecycle (two
// `mkube start -p X` at once would fight over one machine), the image cache, the settings file.
// (The kubeconfig uses client-go's own lock protocol, in package kubeconfig.)
package lockfile
