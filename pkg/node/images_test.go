package node

import (
	"reflect"
	"testing"
)

func TestParseCtrImages(t *testing.T) {
	in := `REF                                    TYPE                                                 DIGEST                                                                  SIZE     PLATFORMS   LABELS
docker.io/mkube-test/hello:dev         application/vnd.docker.distribution.manifest.v2+json sha256:36b151384496aaaa                                                    2.3 MiB  linux/amd64 io.cri-containerd.image=managed
registry.k8s.io/pause:3.10.2           application/vnd.oci.image.manifest.v1+json           sha256:2e42e809210a                                                     991.0 KiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned
registry.k8s.io/pause@sha256:2e42e809  application/vnd.oci.image.manifest.v1+json           sha256:2e42e809210a                                                     991.0 KiB linux/amd64 io.cri-containerd.image=managed
sha256:2e42e809210a0000                application/vnd.oci.image.manifest.v1+json           sha256:2e42e809210a                                                     991.0 KiB linux/amd64 io.cri-containerd.image=managed
`
	got := parseCtrImages(in)
	want := []Image{
		{Ref: "docker.io/mkube-test/hello:dev", Digest: "sha256:36b151384496aaaa", Size: "2.3 MiB"},
		{Ref: "registry.k8s.io/pause:3.10.2", Digest: "sha256:2e42e809210a", Size: "991.0 KiB"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
