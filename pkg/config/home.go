package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"mkube/pkg/atomicfile"
)

// MarkerFile sits at the top of every directory mkube uses as its home. mkube writes into, and
// `delete --purge` removes, only a directory that carries it.
const MarkerFile = ".mkube-home"

type marker struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

var homeID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// knownEntries are what mkube keeps at the top of its home: a directory holding only these (an
// mkube home from before the marker existed) or nothing is adopted; anything else is not ours.
var knownEntries = map[string]bool{"profiles": true, "machines": true, "certs": true, "cache": true, "config": true, "locks": true}

// Open makes sure the home exists and is mkube's, and returns its ID: the mark that every host
// object and kubeconfig entry this home creates carries, so two homes on one machine never adopt
// each other's clusters. A new or empty directory becomes a home; a directory mkube did not
// create is refused rather than written into.
func (h Home) Open() (string, error) {
	if err := h.checkNotPrecious(); err != nil {
		return "", err
	}
	if id, err := h.ID(); err == nil {
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	ents, err := os.ReadDir(string(h))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("MKUBE_HOME %s: %w", h, err)
	}
	for _, e := range ents {
		// Another process creating this home at this instant has its marker in the making.
		if strings.HasPrefix(e.Name(), MarkerFile) || strings.HasPrefix(e.Name(), "."+MarkerFile) {
			continue
		}
		if !knownEntries[e.Name()] {
			return "", fmt.Errorf("MKUBE_HOME %s is not an mkube directory (it holds %q and no %s): mkube will not write into it; point MKUBE_HOME at a new or empty directory", h, e.Name(), MarkerFile)
		}
	}
	if err := os.MkdirAll(string(h), 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	m := marker{ID: hex.EncodeToString(b), Created: time.Now().UTC()}
	raw, _ := json.Marshal(m)
	// Written aside, then linked into place: a link never replaces an existing marker, so of two
	// processes creating the home at once the first wins and the second reads its ID — an ID,
	// once handed out, never changes under a command that marked objects with it.
	tmp := h.path(MarkerFile + ".new-" + hex.EncodeToString(b[:4]))
	if err := atomicfile.WriteBytes(tmp, append(raw, '\n'), 0o600); err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, h.path(MarkerFile)); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return h.ID()
}

// ID reads the home's ID from its marker; a missing marker is os.ErrNotExist.
func (h Home) ID() (string, error) {
	raw, err := os.ReadFile(h.path(MarkerFile))
	if err != nil {
		return "", err
	}
	var m marker
	if err := json.Unmarshal(raw, &m); err != nil || !homeID.MatchString(m.ID) {
		return "", fmt.Errorf("%s is damaged: delete it only if %s is really mkube's directory", h.path(MarkerFile), h)
	}
	return m.ID, nil
}

// Purge removes the whole home, only when it carries mkube's marker.
func (h Home) Purge() error {
	if err := h.checkNotPrecious(); err != nil {
		return err
	}
	if _, err := h.ID(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(string(h)); errors.Is(serr, os.ErrNotExist) {
				return nil // nothing to purge
			}
			return fmt.Errorf("not purging %s: it has no %s, so mkube did not create it", h, MarkerFile)
		}
		return fmt.Errorf("not purging %s: %w", h, err)
	}
	return os.RemoveAll(string(h))
}

// checkNotPrecious refuses homes that are the file system's root or the user's home directory
// itself (MKUBE_HOME=$HOME is a typo of MKUBE_HOME=$HOME/.mkube).
func (h Home) checkNotPrecious() error {
	p := filepath.Clean(string(h))
	if !filepath.IsAbs(p) {
		return fmt.Errorf("MKUBE_HOME %q is not an absolute path", p)
	}
	if p == filepath.VolumeName(p)+string(filepath.Separator) {
		return fmt.Errorf("MKUBE_HOME %s is the root of the file system: point it at a directory of its own, e.g. ~/.mkube", p)
	}
	if u, err := os.UserHomeDir(); err == nil && strings.EqualFold(filepath.Clean(u), p) {
		return fmt.Errorf("MKUBE_HOME %s is your home directory: point it at a directory of its own, e.g. %s", p, filepath.Join(u, ".mkube"))
	}
	return nil
}
