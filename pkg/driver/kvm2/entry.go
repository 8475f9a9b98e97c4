package kvm2

import (
	"fmt"
	"os"
	"strings"

	"mkube/pkg/driver"
)

// Name of the driver, as minikube's.
const Name = "kvm2"

// DefaultURI is libvirt's system connection, as minikube's --kvm-qemu-uri default.
const DefaultURI = "qemu:///system"

// SSHUser is the login the ISO's seed contract authorizes.
const SSHUser = "docker"

// APIServerPort is where the API server answers on the node's address.
const APIServerPort = 8443

// Options are the driver's settings, with minikube's flag names.
var Options = []driver.Option{
	{Name: "kvm-qemu-uri", Default: DefaultURI, Help: "kvm2: the libvirt connection URI", Validate: checkURI},
	{Name: "kvm-accel", Default: "auto", Choices: []string{"auto", "kvm", "tcg"},
		Help: "kvm2: kvm (hardware), tcg (software emulation, slow) or auto (kvm when /dev/kvm works)"},
}

// checkURI accepts libvirt's QEMU URIs (qemu:///system, qemu+ssh://host/system, ...).
func checkURI(v string) error {
	if !strings.HasPrefix(v, "qemu") || !strings.Contains(v, "://") {
		return fmt.Errorf("not a libvirt QEMU URI (e.g. %s)", DefaultURI)
	}
	return nil
}

// Entry registers the driver. It exists on Linux builds with cgo (libvirt is loaded at run time).
func Entry() driver.Entry {
	return driver.Entry{Name: Name, Priority: 80, Supported: supported, MultiNode: supported, ISO: true, Options: Options, Health: Health, New: newDriver}
}

// KVMUsable tells whether /dev/kvm can be opened; whether guests really run with it is only known
// when one starts (the driver falls back to software emulation then).
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// healthFrom turns a libvirt connection error into advice.
func healthFrom(err error) driver.Health {
	if err == nil {
		return driver.Health{Installed: true, Running: true, Healthy: true}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "dlopen") || strings.Contains(msg, "libvirt.so"):
		return driver.Health{Problem: "libvirt is not installed",
			Fix: "install it: sudo apt-get install libvirt-daemon-system qemu-system-x86 (then start libvirtd)"}
	case strings.Contains(msg, "ermission denied"):
		return driver.Health{Installed: true, Running: true, Problem: "libvirtd is running but you may not use it",
			Fix: "add yourself to the libvirt group: sudo usermod -aG libvirt $USER && newgrp libvirt"}
	default:
		return driver.Health{Installed: true, Problem: "libvirtd is not running (" + strings.SplitN(msg, "\n", 2)[0] + ")",
			Fix: "start it: sudo systemctl start libvirtd (without systemd: sudo virtlogd -d && sudo libvirtd -d)"}
	}
}
