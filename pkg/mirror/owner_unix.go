//go:build !windows

package mirror

import (
	"io/fs"
	"syscall"
)

// owner is what a layer keeps of a file's ownership and hard links.
type owner struct {
	uid, gid int
	nlink    uint64
	ino      uint64
}

func ownerOf(info fs.FileInfo) (owner, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, false
	}
	return owner{uid: int(st.Uid), gid: int(st.Gid), nlink: uint64(st.Nlink), ino: uint64(st.Ino)}, true
}
