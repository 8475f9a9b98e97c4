// Package reason gives user-facing failures a stable ID, an exit code and advice, following
// minikube's exit-code layout so that scripts written for minikube read mkube's codes the same way.
package reason

import (
	"errors"
	"fmt"
)

// Exit codes (minikube's values).
const (
	ExFailure                 = 1
	ExInterrupted             = 2
	ExProgramError            = 10
	ExProgramConflict         = 11
	ExProgramUsage            = 14
	ExProgramConfig           = 18
	ExInsufficientMemory      = 23
	ExInsufficientStorage     = 26
	ExInsufficientCores       = 29
	ExInternetError           = 40
	ExDriverNotFound          = 55
	ExDriverUnsupported       = 56
	ExProviderError           = 60
	ExProviderNotRunning      = 63
	ExProviderNotFound        = 65
	ExProviderPermission      = 67
	ExGuestError              = 80
	ExGuestNotRunning         = 83
	ExGuestNotFound           = 85
	ExRuntimeError            = 90
	ExControlPlaneError       = 100
	ExControlPlaneTimeout     = 102
	ExControlPlaneUnsupported = 106
	ExSvcError                = 110
)

// Kind is a class of failure.
type Kind struct {
	ID       string
	ExitCode int
}

// Kinds used across mkube.
var (
	Usage               = Kind{"MK_USAGE", ExProgramUsage}
	Interrupted         = Kind{"MK_INTERRUPTED", ExInterrupted}
	Internal            = Kind{"MK_INTERNAL", ExProgramError}
	Conflict            = Kind{"MK_CONFLICT", ExProgramConflict}
	Config              = Kind{"MK_CONFIG", ExProgramConfig}
	InsufficientCores   = Kind{"RSRC_INSUFFICIENT_CORES", ExInsufficientCores}
	InsufficientMemory  = Kind{"RSRC_INSUFFICIENT_MEMORY", ExInsufficientMemory}
	InsufficientStorage = Kind{"RSRC_INSUFFICIENT_STORAGE", ExInsufficientStorage}
	Download            = Kind{"INET_DOWNLOAD", ExInternetError}
	DriverUnsupported   = Kind{"DRV_UNSUPPORTED", ExDriverUnsupported}
	DriverNotFound      = Kind{"DRV_NOT_DETECTED", ExDriverNotFound}
	ProviderNotRunning  = Kind{"PROVIDER_NOT_RUNNING", ExProviderNotRunning}
	ProviderNotFound    = Kind{"PROVIDER_NOT_FOUND", ExProviderNotFound}
	ProviderPermission  = Kind{"PROVIDER_PERMISSION", ExProviderPermission}
	ProviderError       = Kind{"PROVIDER_ERROR", ExProviderError}
	GuestNotFound       = Kind{"GUEST_NOT_FOUND", ExGuestNotFound}
	GuestNodeNotFound   = Kind{"GUEST_NODE_RETRIEVE", ExGuestNotFound}
	GuestNotRunning     = Kind{"GUEST_NOT_RUNNING", ExGuestNotRunning}
	GuestError          = Kind{"GUEST_ERROR", ExGuestError}
	K8sUnsupported      = Kind{"K8S_UNSUPPORTED_VERSION", ExControlPlaneUnsupported}
	K8sStart            = Kind{"K8S_START", ExControlPlaneError}
	K8sTimeout          = Kind{"K8S_TIMEOUT", ExControlPlaneTimeout}
	ImageCache          = Kind{"IMAGE_CACHE", ExRuntimeError}
	Service             = Kind{"SVC_ERROR", ExSvcError}
)

// Error is a failure to show a user: one line of what went wrong, one line of what to do.
type Error struct {
	Kind   Kind
	Err    error
	Advice string
}

func (e *Error) Error() string {
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New wraps err as a user-facing failure.
func New(k Kind, err error, advice string) *Error {
	return &Error{Kind: k, Err: err, Advice: advice}
}

// Errorf is New with a formatted message.
func Errorf(k Kind, advice, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...), Advice: advice}
}

// As finds the user-facing failure in an error chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// ExitCode is the process exit code for err: its Kind's, or 1 for unclassified errors.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := As(err); ok {
		return e.Kind.ExitCode
	}
	return ExFailure
}
