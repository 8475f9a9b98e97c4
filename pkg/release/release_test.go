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

func TestRefAndDevelopmentBuild(t *testing.T) {
	// This test binary is a development build: no registry, no digests, refs by tag.
	if Registry() != "" || Current().Images != nil {
		t.Fatalf("development build claims a release registry: %+v", Current())
	}
	if got, want := Ref("127.0.0.1:5000/m/", NodeRepo), "127.0.0.1:5000/m/node:"+Version(); got != want {
		t.Errorf("Ref = %q, want %q", got, want)
	}
	if got, want := LocalRef(DashboardRepo), "mkube.local/dashboard:"+Version(); got != want {
		t.Errorf("LocalRef = %q, want %q", got, want)
	}
}
