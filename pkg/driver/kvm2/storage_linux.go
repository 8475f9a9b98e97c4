//go:build linux && cgo

package kvm2

import (
	"fmt"
	"os"

	"libvirt.org/go/libvirt"
)

// ensurePool defines, builds and starts mkube's storage pool unless it runs: the volumes of every
// mkube home on the host live there.
func ensurePool(c *libvirt.Connect) (*libvirt.StoragePool, error) {
	pool, err := c.LookupStoragePoolByName(Pool)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_POOL) {
		var x string
		if x, err = poolXML(); err == nil {
			if pool, err = c.StoragePoolDefineXML(x, 0); err == nil {
				err = pool.Build(0)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", Pool, err)
	}
	if active, _ := pool.IsActive(); !active {
		if err := pool.Create(0); err != nil {
			pool.Free()
			return nil, fmt.Errorf("starting storage pool %s: %w", Pool, err)
		}
	}
	pool.Refresh(0)
	return pool, nil
}

func ensureVolume(pool *libvirt.StoragePool, name, format string, capacity uint64) (string, error) {
	v, err := pool.LookupStorageVolByName(name)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_VOL) {
		var x string
		if x, err = volumeXML(name, format, capacity); err == nil {
			v, err = pool.StorageVolCreateXML(x, 0)
		}
	}
	if err != nil {
		return "", err
	}
	defer v.Free()
	return v.GetPath()
}

func deleteVolume(pool *libvirt.StoragePool, name string) error {
	v, err := pool.LookupStorageVolByName(name)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_VOL) {
		return nil
	}
	if err != nil {
		return err
	}
	defer v.Free()
	return v.Delete(0)
}

// removePool deletes the ISO volumes and then the pool, if it is mkube's (at mkube's path) and
// nothing else is left in it: a storage pool keeps no metadata to mark it, and other homes' disks
// may still be there. Best effort, as removeNetwork.
func removePool(pool *libvirt.StoragePool) {
	if x, err := pool.GetXMLDesc(libvirt.STORAGE_XML_INACTIVE); err != nil || poolPath(x) != PoolPath {
		return
	}
	vols, err := pool.ListAllStorageVolumes(0)
	if err != nil {
		return
	}
	left := 0
	for _, v := range vols {
		if name, err := v.GetName(); err == nil && isISOVolume(name) && v.Delete(0) == nil {
			v.Free()
			continue
		}
		left++
		v.Free()
	}
	if left > 0 {
		return
	}
	pool.Destroy()
	pool.Delete(0)
	pool.Undefine()
}

// uploadFile copies a host file into a raw volume, unless a complete volume of that name is there
// already (names carry the content's digest).
func uploadFile(c *libvirt.Connect, pool *libvirt.StoragePool, name, src string) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	// libvirt cannot rename a volume, and a volume has its full capacity from the moment it is
	// created: an upload cut short (Ctrl-C, a crash) would look complete. A small marker volume,
	// made only after the upload finished, says it is; without it the volume is uploaded again.
	done := completeMarker(name)
	if v, err := pool.LookupStorageVolByName(name); err == nil {
		info, ierr := v.GetInfo()
		path, perr := v.GetPath()
		m, merr := pool.LookupStorageVolByName(done)
		if merr == nil {
			m.Free()
		}
		if ierr == nil && perr == nil && merr == nil && info.Capacity == uint64(st.Size()) {
			v.Free()
			return path, nil
		}
		v.Delete(0)
		v.Free()
	}
	if err := deleteVolume(pool, done); err != nil {
		return "", err
	}
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	path, err := upload(c, pool, name, uint64(st.Size()), func(b []byte) (int, error) { return f.Read(b) })
	if err != nil {
		return "", err
	}
	if _, err := uploadBytes(c, pool, done, []byte("complete\n")); err != nil {
		return "", err
	}
	return path, nil
}

func uploadBytes(c *libvirt.Connect, pool *libvirt.StoragePool, name string, data []byte) (string, error) {
	if err := deleteVolume(pool, name); err != nil {
		return "", err
	}
	off := 0
	return upload(c, pool, name, uint64(len(data)), func(b []byte) (int, error) {
		n := copy(b, data[off:])
		off += n
		return n, nil
	})
}

func upload(c *libvirt.Connect, pool *libvirt.StoragePool, name string, size uint64, read func([]byte) (int, error)) (string, error) {
	x, err := volumeXML(name, "raw", size)
	if err != nil {
		return "", err
	}
	v, err := pool.StorageVolCreateXML(x, 0)
	if err != nil {
		return "", err
	}
	defer v.Free()
	stream, err := c.NewStream(0)
	if err != nil {
		return "", err
	}
	defer stream.Free()
	if err := v.Upload(stream, 0, size, 0); err != nil {
		return "", err
	}
	if err := stream.SendAll(func(_ *libvirt.Stream, n int) ([]byte, error) {
		buf := make([]byte, n)
		got, err := read(buf)
		if err != nil && got == 0 {
			return nil, nil // end of input
		}
		return buf[:got], nil
	}); err != nil {
		stream.Abort()
		return "", err
	}
	if err := stream.Finish(); err != nil {
		return "", err
	}
	return v.GetPath()
}
