package driver

import (
	"errors"
	"testing"
)

func TestCheckTag(t *testing.T) {
	me := Owner{HomeID: "0123456789abcdef", Profile: "dev"}
	tests := []struct {
		name, tag string
		owned     bool
		other     string
	}{
		{"ours", "mkube-owner:0123456789abcdef/dev", true, ""},
		{"no mark", "", false, ""},
		{"the user's own notes", "my database VM", false, ""},
		{"another home", "mkube-owner:fedcba9876543210/dev", false, "another mkube home"},
		{"another profile", "mkube-owner:0123456789abcdef/prod", false, "another profile of this mkube home"},
		{"a longer profile", "mkube-owner:0123456789abcdef/dev2", false, "another profile of this mkube home"},
		{"a home ID prefix", "mkube-owner:0123456789abcdef0/dev", false, "another mkube home"},
	}
	for _, tt := range tests {
		err := me.CheckTag("libvirt domain", "dev", tt.tag)
		if tt.owned {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ne *NotOwnedError
		if !errors.As(err, &ne) || !errors.Is(err, ErrNotOwned) || ne.Kind != "libvirt domain" || ne.Name != "dev" || ne.Other != tt.other {
			t.Errorf("%s: %#v", tt.name, err)
		}
	}
	if err := (Owner{Profile: "dev"}).CheckTag("VirtualBox VM", "dev", "mkube-owner:/dev"); err == nil {
		t.Error("an owner without a home ID owns a tag")
	}
}

func TestForProfile(t *testing.T) {
	if o, err := (Owner{HomeID: "h"}).ForProfile("dev"); err != nil || o != (Owner{HomeID: "h", Profile: "dev"}) {
		t.Errorf("%+v %v", o, err)
	}
	if _, err := (Owner{Profile: "dev"}).ForProfile("dev"); err == nil {
		t.Error("no home ID accepted")
	}
	if _, err := (Owner{HomeID: "h", Profile: "prod"}).ForProfile("dev"); err == nil {
		t.Error("another profile's owner accepted")
	}
}

func TestOwnsLabels(t *testing.T) {
	me := Owner{HomeID: "h1", Profile: "dev"}
	legacy := Owner{HomeID: "h1", Profile: "dev", Legacy: true}
	for _, tc := range []struct {
		name   string
		owner  Owner
		labels map[string]string
		want   bool
	}{
		{"ours", me, me.Labels(), true},
		{"no labels (the user's)", me, nil, false},
		{"another home", me, Owner{HomeID: "h2", Profile: "dev"}.Labels(), false},
		{"another profile", me, Owner{HomeID: "h1", Profile: "prod"}.Labels(), false},
		{"an older mkube's, profile not legacy", me, map[string]string{LabelCreatedBy: "true", LabelProfile: "dev"}, false},
		{"an older mkube's, legacy profile", legacy, map[string]string{LabelCreatedBy: "true", LabelProfile: "dev"}, true},
		{"legacy profile still refuses another home", legacy, Owner{HomeID: "h2", Profile: "dev"}.Labels(), false},
		{"legacy profile still refuses the user's", legacy, map[string]string{"app": "postgres"}, false},
		{"empty home ID owns nothing marked", Owner{Profile: "dev"}, Owner{Profile: "dev"}.Labels(), false},
	} {
		if got := tc.owner.OwnsLabels(tc.labels); got != tc.want {
			t.Errorf("%s: OwnsLabels = %v, want %v", tc.name, got, tc.want)
		}
	}
}
