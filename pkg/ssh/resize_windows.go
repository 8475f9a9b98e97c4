//go:build windows

package ssh

// watchResize: Windows consoles send no resize signal; the initial size stays.
func watchResize(func()) (stop func()) { return func() {} }
