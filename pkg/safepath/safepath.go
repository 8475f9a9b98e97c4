// Package safepath builds every path mkube writes or removes under one of its own directories
// ($MKUBE_HOME and the folders under it). A name that comes from a user (a profile, an image, an
// ISO file name) is one path element: it can never climb out of, or replace, the directory it is
// meant for. This is the defence behind the name validation done at the command line.
package safepath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxElem bounds one path element: every file system mkube runs on takes 255 bytes.
const MaxElem = 255

// ErrOutside is wrapped by every refusal.
var ErrOutside = errors.New("path outside mkube's directory")

// Elem checks that s is usable as exactly one path element: not empty, not "." or "..", no path
// separator (either OS's), no NUL or other control character, valid UTF-8, at most MaxElem bytes.
func Elem(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty name: %w", ErrOutside)
	case s == "." || s == "..":
		return fmt.Errorf("name %q: %w", s, ErrOutside)
	case len(s) > MaxElem:
		return fmt.Errorf("name of %d bytes is longer than %d: %w", len(s), MaxElem, ErrOutside)
	case !utf8.ValidString(s):
		return fmt.Errorf("name %q is not valid UTF-8: %w", s, ErrOutside)
	case strings.ContainsAny(s, `/\`):
		return fmt.Errorf("name %q contains a path separator: %w", s, ErrOutside)
	case filepath.VolumeName(s) != "":
		return fmt.Errorf("name %q is a volume name: %w", s, ErrOutside)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains a control character: %w", s, ErrOutside)
		}
	}
	return nil
}

// Join returns root/elems[0]/elems[1]/... after checking each element with Elem, and checks that
// the result lies strictly inside root. root must be absolute.
func Join(root string, elems ...string) (string, error) {
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("%q is not an absolute directory: %w", root, ErrOutside)
	}
	if len(elems) == 0 {
		return "", fmt.Errorf("no name under %s: %w", root, ErrOutside)
	}
	for _, e := range elems {
		if err := Elem(e); err != nil {
			return "", err
		}
	}
	p := filepath.Join(append([]string{root}, elems...)...)
	if !Inside(root, p) {
		return "", fmt.Errorf("%s is not inside %s: %w", p, root, ErrOutside)
	}
	return p, nil
}

// Inside reports whether p lies strictly inside root (root itself is not inside), lexically.
func Inside(root, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(p))
	if err != nil || rel == "." || rel == ".." || filepath.IsAbs(rel) {
		return false
	}
	return !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// RemoveAll removes p and what it holds, only when p lies strictly inside root, also after
// resolving symbolic links in its parent directories (a link planted in the middle of mkube's
// tree must not redirect a delete into the user's files). The one kind of link it follows is a
// top-level folder of root that the user moved elsewhere (machines/ → another disk): containment
// is then checked inside that folder's target. A missing p is not an error. A link at p itself is
// removed as a link, never followed.
func RemoveAll(root, p string) error {
	if !Inside(root, p) {
		return fmt.Errorf("refusing to remove %s: %w", p, ErrOutside)
	}
	rel, _ := filepath.Rel(filepath.Clean(root), filepath.Clean(p))
	area := root
	if top, _, nested := strings.Cut(rel, string(filepath.Separator)); nested {
		area = filepath.Join(root, top)
	}
	realRoot, err := filepath.EvalSymlinks(area)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	realParent, err := filepath.EvalSymlinks(filepath.Dir(p))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	target := filepath.Join(realParent, filepath.Base(p))
	if !Inside(realRoot, target) {
		return fmt.Errorf("refusing to remove %s: it resolves to %s: %w", p, target, ErrOutside)
	}
	return os.RemoveAll(target)
}
