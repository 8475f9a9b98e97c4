package cluster

import (
	"reflect"
	"strings"
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
	want := []NodeImage{
		{Ref: "docker.io/mkube-test/hello:dev", Digest: "sha256:36b151384496aaaa", Size: "2.3 MiB"},
		{Ref: "registry.k8s.io/pause:3.10.2", Digest: "sha256:2e42e809210a", Size: "991.0 KiB"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	var b strings.Builder
	if err := PrintImages(&b, got, "short"); err != nil || b.String() != "docker.io/mkube-test/hello:dev\nregistry.k8s.io/pause:3.10.2\n" {
		t.Errorf("short: %q %v", b.String(), err)
	}
	if err := PrintImages(&b, got, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestLooksLikeFile(t *testing.T) {
	for arg, want := range map[string]bool{"/tmp/x.tar": true, "./img": true, "app.tar": true, "app.tar.gz": true,
		"nginx": false, "my-app:dev": false, "localhost:5000/app:v1": false} {
		if looksLikeFile(arg) != want {
			t.Errorf("looksLikeFile(%q) = %v", arg, !want)
		}
	}
}
