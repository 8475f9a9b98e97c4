package cache

// TEMPORARY stubs until the pull side lands (helper branch h-pull). Delete before merging.

import (
	"context"
	"errors"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
)

func RegistryRef(ref string) (name.Reference, error) { return name.ParseReference(ref) }
func PullISO(ctx context.Context, ref name.Reference, dir string, progress io.Writer) (string, error) {
	return "", errors.New("stub")
}
func PullBinaries(ctx context.Context, ref name.Reference, dir string, names []string, progress io.Writer) error {
	return errors.New("stub")
}
func (c *Images) EnsureFrom(ctx context.Context, refs []string, source func(ref string) (name.Reference, error), progress io.Writer) error {
	return errors.New("stub")
}
func (c *Images) PullImage(ctx context.Context, ref string, src name.Reference, progress io.Writer) error {
	return errors.New("stub")
}
