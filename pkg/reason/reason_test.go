package reason

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"unclassified", errors.New("boom"), ExFailure},
		{"classified", New(Usage, errors.New("bad flag"), "see --help"), ExProgramUsage},
		{"wrapped", fmt.Errorf("start: %w", Errorf(GuestNotFound, "", "profile %q not found", "p")), ExGuestNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// The codes README.md and the integration tests promise (minikube's values).
func TestDocumentedKinds(t *testing.T) {
	tests := []struct {
		kind Kind
		id   string
		code int
	}{
		{InsufficientCores, "RSRC_INSUFFICIENT_CORES", 29},
		{DriverUnsupported, "DRV_UNSUPPORTED", 56},
		{GuestNotFound, "GUEST_NOT_FOUND", 85},
		{Service, "SVC_ERROR", 110},
	}
	for _, tt := range tests {
		if tt.kind.ID != tt.id || tt.kind.ExitCode != tt.code {
			t.Errorf("got %s (exit %d), want %s (exit %d)", tt.kind.ID, tt.kind.ExitCode, tt.id, tt.code)
		}
	}
}
