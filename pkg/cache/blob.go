package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/cheggaaa/pb/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"mkube/pkg/lockfile"
	"mkube/pkg/out"
)

// FetchBlob downloads the blob desc of repo to dst, a cache entry under the digest-file rule: a dst
// already Verified with desc's digest is kept without any network access; otherwise the download
// goes to a partial file beside dst (.NAME.<digest prefix>.partial, kept when it fails or is
// cancelled, so that the next call resumes it with a Range request), is checked against desc's
// size and sha256 (a mismatch deletes the partial: the registry served something else), and is
// committed (dst.sha256 records the digest). progress, if not nil, gets a byte bar labelled label.
func FetchBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, dst string, progress io.Writer, label string) error {
	if err := checkDigest(desc); err != nil {
		return err
	}
	if d, ok := Verified(dst); ok && d == desc.Digest.Hex {
		return nil
	}
	src, err := newBlobSource(ctx, repo)
	if err != nil {
		return err
	}
	return src.toFile(ctx, desc, dst, 0o644, progress, label)
}

// checkDigest refuses a descriptor this cache cannot verify: its records are sha256.
func checkDigest(desc v1.Descriptor) error {
	if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 || desc.Size < 0 {
		return fmt.Errorf("blob %s of %d bytes: only sha256 blobs of a known size are fetched", desc.Digest, desc.Size)
	}
	return nil
}

// partialFile is where dst's download for digest hex collects: a dot-name beside dst, so it is on
// the same file system (the commit is a rename) and not mistaken for an entry. It names the
// digest, so a partial of another build under the same name is never resumed into this one.
func partialFile(dst, hex string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+"."+hex[:16]+".partial")
}

// toFile fetches desc into dst (mode mode) and commits it; see FetchBlob.
func (s *blobSource) toFile(ctx context.Context, desc v1.Descriptor, dst string, mode os.FileMode, progress io.Writer, label string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	partial := partialFile(dst, desc.Digest.Hex)
	unlock, err := lockBlob(ctx, partial)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process may have fetched it while this one waited for the lock.
	if d, ok := Verified(dst); ok && d == desc.Digest.Hex {
		return nil
	}
	m := &meter{}
	if progress != nil {
		m.bar = out.Bar(progress, label, desc.Size, true)
		defer m.bar.Finish()
	}
	if err := s.fetch(ctx, desc, partial, m); err != nil {
		return err
	}
	// Before Commit: once dst has its record, it is an entry as it is.
	if err := os.Chmod(partial, mode); err != nil {
		return err
	}
	return Commit(partial, dst, desc.Digest.Hex)
}

// lockBlob serialises the downloads of one partial file, by goroutines and processes alike (two
// starts pulling the same node image): two writers appending to one file would only make a blob
// that fails its check. The lock file stays beside the partial; removing it while another process
// waits on it would let a third one in.
//
// On Windows, lockfile takes a lock older than a minute for a crashed process's: a download that
// lasts longer can then be joined by a second one. The sha256 check refuses the mixed result; it
// costs a retry, never a bad file.
func lockBlob(ctx context.Context, partial string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := lockfile.Lock(ctx, partial+".lock")
	if err != nil {
		return nil, fmt.Errorf("another mkube is downloading %s: %w", filepath.Base(partial), err)
	}
	return unlock, nil
}

// meter shows the bytes one blob has on disk on a bar (nil: none), however they got there: a
// resumed download starts at what the partial held, a restart takes it back to zero. Several
// meters may share one bar (an image's blobs).
type meter struct {
	bar *pb.ProgressBar
	n   int64
}

func (m *meter) set(n int64) {
	if m.bar != nil {
		m.bar.Add64(n - m.n)
	}
	m.n = n
}

func (m *meter) Write(p []byte) (int, error) {
	m.set(m.n + int64(len(p)))
	return len(p), nil
}

// fetch makes partial hold desc's content, verified, resuming from what it already holds; it
// returns nil only then. The caller holds partial's lock. A failed or cancelled transfer keeps
// partial for the next call; content that does not match desc (too long, or the wrong sha256) is
// deleted and refused: the registry served something else, and resuming it would not help.
func (s *blobSource) fetch(ctx context.Context, desc v1.Descriptor, partial string, m *meter) error {
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if have > desc.Size {
		have = 0 // not a prefix of this blob
	}
	m.set(have)
	// What is there was hashed when it was written, by a process that is gone: hash it again.
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, have)); err != nil {
		return err
	}
	if have < desc.Size {
		if have, err = s.download(ctx, desc, f, have, h, m); err != nil {
			return err
		}
	}
	if have != desc.Size || hex.EncodeToString(h.Sum(nil)) != desc.Digest.Hex {
		f.Close()
		os.Remove(partial)
		m.set(0)
		return fmt.Errorf("the blob %s from %s does not match its digest: refused", desc.Digest, s.repo.RegistryStr())
	}
	return f.Close()
}

// download writes the rest of desc's content to f, which holds have bytes of it (hashed into h),
// and returns how many it holds then. It ends at the blob's end, or one byte past it (which fetch
// refuses), or at a failure of the transfer (with what arrived kept).
func (s *blobSource) download(ctx context.Context, desc v1.Descriptor, f *os.File, have int64, h hash.Hash, m *meter) (int64, error) {
	resp, from, err := s.open(ctx, desc, have)
	if err != nil {
		return have, err
	}
	defer resp.Body.Close()
	if from != have { // the registry starts again from zero
		h.Reset()
		m.set(0)
	}
	// Whatever lies past from (a partial longer than the blob) goes.
	if err := f.Truncate(from); err != nil {
		return have, err
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return from, err
	}
	n, err := io.Copy(io.MultiWriter(f, h, m), io.LimitReader(resp.Body, desc.Size-from+1))
	have = from + n
	switch {
	case err != nil && IsStall(err):
		return have, err // names the URL already
	case err != nil:
		return have, fmt.Errorf("downloading %s from %s: %w", desc.Digest, s.repo.RegistryStr(), err)
	case have < desc.Size:
		return have, fmt.Errorf("downloading %s from %s: the registry ended it after %d of %d bytes", desc.Digest, s.repo.RegistryStr(), have, desc.Size)
	}
	return have, nil
}

// open requests desc's content from byte have on and returns the response and the offset its body
// starts at: have when the registry resumed (206 of that range), 0 when it sends the whole blob
// (200: it ignores ranges). A 416 (it has no such range) or a 206 of another range means what the
// partial holds is of no use to it: the whole blob is asked for instead.
func (s *blobSource) open(ctx context.Context, desc v1.Descriptor, have int64) (*http.Response, int64, error) {
	resp, err := s.get(ctx, desc, have)
	if err != nil {
		return nil, have, fmt.Errorf("downloading %s from %s: %w", desc.Digest, s.repo.RegistryStr(), err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, 0, nil
	case have > 0 && resp.StatusCode == http.StatusPartialContent && rangeStart(resp) == have:
		return resp, have, nil
	case have > 0 && (resp.StatusCode == http.StatusPartialContent || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable):
		resp.Body.Close()
		return s.open(ctx, desc, 0)
	}
	defer resp.Body.Close()
	return nil, have, fmt.Errorf("downloading %s from %s: %w", desc.Digest, s.repo.RegistryStr(), transport.CheckError(resp, http.StatusOK))
}

// get sends GET /v2/REPO/blobs/DIGEST, for bytes from on when from > 0.
func (s *blobSource) get(ctx context.Context, desc v1.Descriptor, from int64) (*http.Response, error) {
	u := url.URL{
		Scheme: s.repo.Registry.Scheme(),
		Host:   s.repo.RegistryStr(),
		Path:   "/v2/" + s.repo.RepositoryStr() + "/blobs/" + desc.Digest.String(),
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if from > 0 {
		// A closed range, not "bytes=N-": the registry of go-containerregistry (mkube's own mirror
		// serves with it) understands only "bytes=START-END"; distribution, the hosted registries
		// and their CDNs take both.
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, desc.Size-1))
	}
	return s.client.Do(req)
}

// rangeStart is where a 206's Content-Range ("bytes START-END/SIZE") starts, -1 if it says nothing
// usable.
func rangeStart(resp *http.Response) int64 {
	var start, end int64
	var size string
	if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%s", &start, &end, &size); err != nil {
		return -1
	}
	return start
}
