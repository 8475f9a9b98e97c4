package artifacts

// The ISO's initramfs: a newc cpio of busybox, the modules the guest needs, and /init.

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeInitramfs writes the gzipped newc archive: busybox, /init, and the modules the init loads
// (in dependency order, listed in /etc/mkube-modules).
func writeInitramfs(out, root, kver string) error {
	modDir := filepath.Join("usr/lib/modules", kver)
	order, err := moduleOrder(filepath.Join(root, modDir, "modules.dep"), initramfsModules)
	if err != nil {
		return err
	}
	initScript, err := guestFS.ReadFile("initramfs/init")
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "etc", "usr", "usr/lib", "usr/lib/modules", modDir, "proc", "sys", "run", "media", "lower", "data", "newroot"} {
		w.dir(d)
	}
	w.file("init", 0o755, initScript)
	bb, err := os.ReadFile(busyboxBin)
	if err != nil {
		return err
	}
	w.file("bin/busybox", 0o755, bb)
	var list []string
	made := map[string]bool{}
	for _, m := range order {
		p := filepath.Join(modDir, m)
		for d := filepath.Dir(p); d != modDir && !made[d]; d = filepath.Dir(d) {
			made[d] = true
		}
		list = append(list, p)
	}
	dirs := make([]string, 0, len(made))
	for d := range made {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents sort before children
	for _, d := range dirs {
		w.dir(d)
	}
	for _, p := range list {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return err
		}
		w.file(p, 0o644, data)
	}
	w.file("etc/mkube-modules", 0o644, []byte(strings.Join(list, "\n")+"\n"))
	if err := w.close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// moduleOrder resolves modules and their dependencies from modules.dep into load order
// (dependencies first), as paths relative to the modules directory.
func moduleOrder(depFile string, want []string) ([]string, error) {
	raw, err := os.ReadFile(depFile)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name := strings.TrimSuffix(filepath.Base(mod), ".ko")
		byName[strings.ReplaceAll(name, "-", "_")] = mod
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, m)
	}
	for _, w := range want {
		m, ok := byName[w]
		if !ok {
			return nil, fmt.Errorf("kernel module %s is not in %s (built in, or renamed?)", w, depFile)
		}
		visit(m)
	}
	return order, nil
}

// cpioWriter writes the "newc" format the kernel unpacks an initramfs from.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	buf = append(buf, data...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	_, c.err = c.w.Write(buf)
}

func (c *cpioWriter) dir(name string) { c.entry(name, 0o040755, nil) }

func (c *cpioWriter) file(name string, perm uint32, d []byte) { c.entry(name, 0o100000|perm, d) }

func (c *cpioWriter) close() error { c.entry("TRAILER!!!", 0, nil); return c.err }
