package k8sversion

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "", want: DefaultString},
		{in: "stable", want: DefaultString},
		{in: "latest", want: known[0]},
		{in: "v1.34.4", want: "v1.34.4"},
		{in: "1.33.2", want: "v1.33.2"},
		{in: " v1.31.0 ", want: "v1.31.0"},
		{in: "v1.37.9", want: "v1.37.9"},
		{in: "v1.99.0", wantErr: "not supported: mkube supports v1.31.x through v1.37.x"},
		{in: "v1.30.14", wantErr: "not supported"},
		{in: "v2.0.0", wantErr: "not supported"},
		{in: "abc", wantErr: "not a Kubernetes version"},
		{in: "v1.34", wantErr: "not a Kubernetes version"},
		{in: "v1.034.1", wantErr: "not a Kubernetes version"},
		{in: "v1.34.-1", wantErr: "not a Kubernetes version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Resolve(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("Resolve(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestKnownIsNewestFirstAndSupported(t *testing.T) {
	ks := Known()
	for i, v := range ks {
		if err := CheckSupported(v); err != nil {
			t.Errorf("known version %s: %v", v, err)
		}
		if i > 0 && !v.Less(ks[i-1]) {
			t.Errorf("Known() not newest first at %s", v)
		}
	}
	if err := CheckSupported(Default()); err != nil {
		t.Errorf("default: %v", err)
	}
	if Default() != Newest() {
		t.Logf("default is %s", Default())
	}
}
