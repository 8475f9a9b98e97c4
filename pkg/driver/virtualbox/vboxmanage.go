package virtualbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// vboxManage finds VBoxManage: on PATH, or where VirtualBox's Windows installer puts it.
func vboxManage() (string, error) {
	if p, err := exec.LookPath("VBoxManage"); err == nil {
		return p, nil
	}
	if dir := os.Getenv("VBOX_MSI_INSTALL_PATH"); dir != "" {
		p := filepath.Join(dir, "VBoxManage.exe")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("VBoxManage was not found")
}

// commandError is VBoxManage exiting non-zero, with what it said.
type commandError struct {
	args   []string
	code   int
	output string
}

func (e *commandError) Error() string {
	return fmt.Sprintf("VBoxManage %s: exit status %d: %s", strings.Join(e.args, " "), e.code, strings.TrimSpace(e.output))
}

// run runs VBoxManage and returns its standard output.
func run(ctx context.Context, args ...string) (string, error) {
	bin, err := vboxManage()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return stdout.String(), &commandError{args: args, code: ee.ExitCode(), output: stderr.String() + stdout.String()}
		}
		return "", err
	}
	return stdout.String(), nil
}

// machineReadable parses `showvminfo --machinereadable`: key="value" or key=value lines.
func machineReadable(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		m[strings.Trim(k, `"`)] = strings.Trim(v, `"`)
	}
	return m
}

// hostOnlyIf is one entry of `VBoxManage list hostonlyifs`.
type hostOnlyIf struct{ Name, IP, Mask string }

func parseHostOnlyIfs(out string) []hostOnlyIf {
	var list []hostOnlyIf
	var cur *hostOnlyIf
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Name":
			list = append(list, hostOnlyIf{Name: v})
			cur = &list[len(list)-1]
		case "IPAddress":
			if cur != nil {
				cur.IP = v
			}
		case "NetworkMask":
			if cur != nil {
				cur.Mask = v
			}
		}
	}
	return list
}

// version parses `VBoxManage --version` ("7.0.14r161095") into major and minor.
func version(out string) (int, int, error) {
	s := strings.TrimSpace(out)
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("unexpected VBoxManage version %q", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unexpected VBoxManage version %q", s)
	}
	return major, minor, nil
}

// leases is VirtualBox's DHCP server lease file (HostInterfaceNetworking-<if>-Dhcpd.leases).
type leases struct {
	Leases []struct {
		MAC     string `xml:"mac,attr"`
		State   string `xml:"state,attr"`
		Address struct {
			Value string `xml:"value,attr"`
		} `xml:"Address"`
	} `xml:"Lease"`
}

// leaseIP finds the address the host-only network's DHCP server gave mac.
func leaseIP(file, mac string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var l leases
	if err := xml.Unmarshal(raw, &l); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	for _, e := range l.Leases {
		if strings.EqualFold(e.MAC, mac) && e.State != "released" && e.Address.Value != "" {
			return e.Address.Value, nil
		}
	}
	return "", nil
}

// userHome is VirtualBox's per-user directory, where the DHCP server keeps its leases.
func userHome() string {
	if h := os.Getenv("VBOX_USER_HOME"); h != "" {
		return h
	}
	home, _ := os.UserHomeDir()
	switch runtime.GOOS {
	case "darwin":
		return filepath.Join(home, "Library", "VirtualBox")
	case "windows":
		return filepath.Join(home, ".VirtualBox")
	default:
		return filepath.Join(home, ".config", "VirtualBox")
	}
}
