// Package hostpath is mkube's storage provisioner: each PersistentVolumeClaim of its StorageClass
// gets a directory on the node, exposed as a hostPath PersistentVolume. It is what a single-node
// development cluster needs, and what minikube's default StorageClass does too.
package hostpath

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// Name is the provisioner name StorageClasses refer to.
const Name = "mkube.local/hostpath"

// DefaultRoot is where volumes live on the node: under /var, which is on the node's persistent
// volume (the docker driver) or data disk (VM drivers), so data survives stop and start.
const DefaultRoot = "/var/lib/mkube/hostpath-provisioner"

// identityAnnotation marks the volumes this provisioner made, so it never deletes another's.
const identityAnnotation = "hostPathProvisionerIdentity"

// Provisioner creates and deletes volume directories under Root.
type Provisioner struct {
	Root     string
	Identity string // e.g. the node name
}

var _ controller.Provisioner = (*Provisioner)(nil)

// Provision makes <Root>/<namespace>/<claim> and returns a PersistentVolume for it.
func (p *Provisioner) Provision(_ context.Context, o controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	if o.PVC == nil {
		return nil, controller.ProvisioningFinished, errors.New("no claim to provision")
	}
	if o.PVC.Spec.VolumeMode != nil && *o.PVC.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, errors.New("block volumes are not supported by the hostpath provisioner")
	}
	dir := filepath.Join(p.Root, o.PVC.Namespace, o.PVC.Name)
	if !p.inside(dir) {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s maps outside %s", o.PVC.Namespace, o.PVC.Name, p.Root)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	// Pods run as any user: the directory must be writable by all of them, whatever the umask.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if o.StorageClass != nil && o.StorageClass.ReclaimPolicy != nil {
		reclaim = *o.StorageClass.ReclaimPolicy
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.PVName,
			Annotations: map[string]string{identityAnnotation: p.Identity},
		},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   o.PVC.Spec.AccessModes,
			Capacity: corev1.ResourceList{
				corev1.ResourceStorage: o.PVC.Spec.Resources.Requests[corev1.ResourceStorage],
			},
			MountOptions: mountOptions(o),
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}
	return pv, controller.ProvisioningFinished, nil
}

func mountOptions(o controller.ProvisionOptions) []string {
	if o.StorageClass == nil {
		return nil
	}
	return o.StorageClass.MountOptions
}

// Delete removes a volume's directory, if this provisioner made it.
func (p *Provisioner) Delete(_ context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[identityAnnotation] != p.Identity {
		return &controller.IgnoredError{Reason: "volume was made by another provisioner identity"}
	}
	if pv.Spec.HostPath == nil {
		return &controller.IgnoredError{Reason: "not a hostPath volume"}
	}
	dir := filepath.Clean(pv.Spec.HostPath.Path)
	if !p.inside(dir) {
		return fmt.Errorf("refusing to delete %s: it is not under %s", dir, p.Root)
	}
	return os.RemoveAll(dir)
}

// inside reports whether dir is strictly below Root, so neither a crafted name nor a hand-edited PV
// can make the provisioner write or delete elsewhere on the node.
func (p *Provisioner) inside(dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(p.Root), filepath.Clean(dir))
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..")
}
