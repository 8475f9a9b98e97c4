package hostpath

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

func claim(ns, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi"),
			}},
		},
	}
}

func TestProvisionAndDelete(t *testing.T) {
	root := t.TempDir()
	p := &Provisioner{Root: root, Identity: "node1"}
	retain := corev1.PersistentVolumeReclaimRetain
	tests := []struct {
		name        string
		class       *storagev1.StorageClass
		wantReclaim corev1.PersistentVolumeReclaimPolicy
	}{
		{"default reclaim", &storagev1.StorageClass{}, corev1.PersistentVolumeReclaimDelete},
		{"class reclaim", &storagev1.StorageClass{ReclaimPolicy: &retain}, corev1.PersistentVolumeReclaimRetain},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claim("default", "data"+string(rune('a'+i)))
			pv, state, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: "pvc-1", PVC: c, StorageClass: tt.class})
			if err != nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision: %v %v", state, err)
			}
			dir := filepath.Join(root, "default", c.Name)
			st, err := os.Stat(dir)
			if err != nil || st.Mode().Perm() != 0o777 {
				t.Fatalf("volume dir: %v %v", st, err)
			}
			if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != dir {
				t.Errorf("hostPath = %+v", pv.Spec.HostPath)
			}
			if pv.Spec.PersistentVolumeReclaimPolicy != tt.wantReclaim {
				t.Errorf("reclaim = %s", pv.Spec.PersistentVolumeReclaimPolicy)
			}
			if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.String() != "1Gi" {
				t.Errorf("capacity = %s", q.String())
			}
			os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644)
			if err := p.Delete(context.Background(), pv); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("volume dir still there: %v", err)
			}
		})
	}
}

func TestDeleteRefusesForeignVolumes(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	p := &Provisioner{Root: root, Identity: "node1"}
	pv := func(identity, path string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{identityAnnotation: identity}},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path}}},
		}
	}
	var ignored *controller.IgnoredError
	if err := p.Delete(context.Background(), pv("other", filepath.Join(root, "x"))); !errors.As(err, &ignored) {
		t.Errorf("another identity's volume: %v", err)
	}
	for _, path := range []string{outside, root, filepath.Join(root, "..")} {
		if err := p.Delete(context.Background(), pv("node1", path)); err == nil {
			t.Errorf("deleted %s outside the root", path)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("outside dir removed: %v", err)
	}
}

func TestProvisionRejectsBlockAndEscapes(t *testing.T) {
	p := &Provisioner{Root: t.TempDir(), Identity: "n"}
	block := corev1.PersistentVolumeBlock
	c := claim("default", "b")
	c.Spec.VolumeMode = &block
	if _, _, err := p.Provision(context.Background(), controller.ProvisionOptions{PVC: c}); err == nil {
		t.Error("block volume accepted")
	}
	if _, _, err := p.Provision(context.Background(), controller.ProvisionOptions{PVC: claim("..", "..")}); err == nil {
		t.Error("claim escaping the root accepted")
	}
}
