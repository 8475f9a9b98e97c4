package release

import (
	"strings"
	"testing"
)

func TestDigestsRoundTrip(t *testing.T) {
	in := map[string]string{"node": "sha256:aa", "iso": "sha256:bb"}
	s := formatDigests(in)
	if s != "iso=sha256:bb,node=sha256:aa" {
		t.Fatalf("formatDigests = %q", s)
	}
	out := parseDigests(s)
	for k, v := range in {
		if out[k] != v {
			t.Errorf("%s: %q, want %q", k, out[k], v)
		}
	}
	if len(parseDigests("")) != 0 {
		t.Error("empty stamp has digests")
	}
}

func TestStampNamesEveryVariable(t *testing.T) {
	s := Stamp("v1.2.3", "abc", "r.example/mkube", map[string]string{"node": "sha256:aa"})
	for _, want := range []string{"release.version=v1.2.3", "release.commit=abc", "release.registry=r.example/mkube", "release.digests=node=sha256:aa"} {
		if !strings.Contains(s, want) {
			t.Errorf("stamp %q lacks %q", s, want)
		}
	}
}

// TestRef runs in a development build (no registry, no digests: refs by tag) and, from make test,
// in one stamped with a test release's registry and digests.
func TestRef(t *testing.T) {
	want := "127.0.0.1:5000/m/node:" + Version()
	if Registry() == "" {
		if Current().Images != nil || Digest(NodeRepo) != "" {
			t.Fatalf("development build claims release images: %+v", Current())
		}
	} else {
		want += "@" + Digest(NodeRepo)
		if !strings.HasPrefix(Digest(NodeRepo), "sha256:") || Current().Images[NodeRepo] != Ref(Registry(), NodeRepo) {
			t.Fatalf("release build without its node image: %+v", Current())
		}
	}
	if got := Ref("127.0.0.1:5000/m/", NodeRepo); got != want {
		t.Errorf("Ref = %q, want %q", got, want)
	}
	if got, want := LocalRef(DashboardRepo), "mkube.local/dashboard:"+Version(); got != want {
		t.Errorf("LocalRef = %q, want %q", got, want)
	}
}
