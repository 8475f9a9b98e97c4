package artifacts

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mkube/pkg/addons"
	"mkube/pkg/cache"
	"mkube/pkg/mirror"
	"mkube/pkg/netpol"
)

// AgnhostRepo is the standard Kubernetes e2e test image; its tag is agnhost's VERSION file.
const AgnhostRepo = "registry.k8s.io/e2e-test-images/agnhost"

// imageRecipe is one image to assemble: a key over all its inputs, and how to build it.
type imageRecipe struct {
	ref   string
	key   string
	build func() (v1.Image, error)
}

// staticBase is the small layer under images of static binaries (like the distroless images upstream
// uses): users, name service switch, CA certificates and a /tmp.
func staticBase() []mirror.File {
	dir := fs.ModeDir | 0o755
	files := []mirror.File{
		{Path: "/etc", Mode: dir},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")},
		{Path: "/home", Mode: dir}, {Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: 65532, GID: 65532},
		{Path: "/root", Mode: fs.ModeDir | 0o700},
		{Path: "/tmp", Mode: fs.ModeDir | 0o777 | fs.ModeSticky},
		{Path: "/usr", Mode: dir}, {Path: "/usr/local", Mode: dir}, {Path: "/usr/local/bin", Mode: dir},
		{Path: "/var", Mode: dir}, {Path: "/var/run", Mode: dir},
	}
	if _, err := os.Stat(hostCABundle); err == nil {
		files = append(files, mirror.File{Path: "/etc/ssl", Mode: dir}, mirror.File{Path: "/etc/ssl/certs", Mode: dir},
			mirror.File{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Src: hostCABundle})
	}
	return files
}

const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// binaryImage is a static binary on the static base.
func binaryImage(ref, bin, dst string, entrypoint []string, user string) imageRecipe {
	return imageRecipe{
		ref: ref,
		key: recipeKey("binary-image", ref, fileKey(bin), fileKey(hostCABundle), dst, fmt.Sprint(entrypoint), user),
		build: func() (v1.Image, error) {
			base, err := mirror.FilesLayer(staticBase())
			if err != nil {
				return nil, err
			}
			app, err := mirror.FilesLayer([]mirror.File{{Path: dst, Mode: 0o755, Src: bin}})
			if err != nil {
				return nil, err
			}
			return mirror.Assemble(mirror.ImageSpec{Ref: ref, Layers: []v1.Layer{base, app}, Entrypoint: entrypoint,
				Env: []string{defaultPath}, User: user})
		},
	}
}

// provisionerImage and dashboardImage are mkube's own addon images, named ref, of a binary built
// from cmd/storage-provisioner and cmd/dashboard (ownBinary).
func provisionerImage(ref, bin string) imageRecipe {
	return binaryImage(ref, bin, "/storage-provisioner", []string{"/storage-provisioner"}, "")
}

func dashboardImage(ref, bin string) imageRecipe {
	return binaryImage(ref, bin, "/dashboard", []string{"/dashboard"}, "65532")
}

// fileKey identifies a file's content for recipe keys.
func fileKey(path string) string {
	sum, err := cache.FileSHA256(path)
	if err != nil {
		return "missing:" + path
	}
	return sum
}

// images assembles every image of the mirror and stores those whose recipe changed.
func (b *builder) images(ctx context.Context, k kubeBuild, wanted []string, c components, bases map[string]string, extra []imageRecipe) error {
	v := b.opts.Version.String()
	reg := "registry.k8s.io/"
	recipes := []imageRecipe{
		binaryImage(reg+"kube-apiserver:"+v, k.bin("kube-apiserver"), "/usr/local/bin/kube-apiserver", []string{"/usr/local/bin/kube-apiserver"}, ""),
		binaryImage(reg+"kube-controller-manager:"+v, k.bin("kube-controller-manager"), "/usr/local/bin/kube-controller-manager", []string{"/usr/local/bin/kube-controller-manager"}, ""),
		binaryImage(reg+"kube-scheduler:"+v, k.bin("kube-scheduler"), "/usr/local/bin/kube-scheduler", []string{"/usr/local/bin/kube-scheduler"}, ""),
		binaryImage(c.etcdRef, c.etcd, "/usr/local/bin/etcd", []string{"/usr/local/bin/etcd"}, ""),
		binaryImage(c.corednsRef, c.coredns, "/coredns", []string{"/coredns"}, "65532"),
		binaryImage(c.pauseRef, c.pause, "/pause", []string{"/pause"}, "65535:65535"),
		provisionerImage(addons.ProvisionerImage(), c.provisioner),
		dashboardImage(addons.DashboardImage(), c.dashboard),
		binaryImage(addons.MetricsServerImage, c.metricsServer, "/metrics-server", []string{"/metrics-server"}, "65534"),
		binaryImage(addons.TraefikImage, c.traefik, "/usr/local/bin/traefik", []string{"/usr/local/bin/traefik"}, ""),
		registryImage(addons.RegistryImage, c.registry),
		rootfsImage(reg+"kube-proxy:"+v, bases["kube-proxy-base"], []mirror.File{
			{Path: "/usr/local/bin/kube-proxy", Mode: 0o755, Src: k.bin("kube-proxy")},
		}, mirror.ImageSpec{Entrypoint: []string{"/usr/local/bin/kube-proxy"}}),
		// kube-router execs iptables, iptables-save/-restore and ipset, like kube-proxy.
		rootfsImage(netpol.Image, bases["kube-proxy-base"], []mirror.File{
			{Path: "/usr/local/bin/kube-router", Mode: 0o755, Src: c.kubeRouter},
		}, mirror.ImageSpec{Entrypoint: []string{"/usr/local/bin/kube-router"}}),
		agnhostImage(AgnhostRepo+":"+k.agnhostVersion, bases["agnhost-base"], k, k.bin("agnhost"), c.coredns),
	}
	recipes = append(recipes, extra...)
	store, err := cache.OpenImageStore(b.layout.ImagesDir())
	if err != nil {
		return err
	}
	for _, r := range recipes {
		if err := ctx.Err(); err != nil {
			return err
		}
		have, err := store.Recipe(r.ref)
		if err != nil {
			return err
		}
		if have == r.key {
			continue
		}
		b.logf("assembling %s", r.ref)
		img, err := r.build()
		if err != nil {
			return fmt.Errorf("%s: %w", r.ref, err)
		}
		if err := store.Put(r.ref, r.key, img); err != nil {
			return fmt.Errorf("%s: %w", r.ref, err)
		}
	}
	_, err = store.GC()
	return err
}

// rootfsImage is a Debian root file system plus files on top.
func rootfsImage(ref, rootfs string, files []mirror.File, spec mirror.ImageSpec) imageRecipe {
	parts := []string{"rootfs-image", ref, rootfsKey(rootfs), fmt.Sprint(spec.Entrypoint, spec.Cmd, spec.User, spec.Ports)}
	for _, f := range files {
		parts = append(parts, f.Path, f.Linkname, fileKey(f.Src), string(f.Data))
	}
	return imageRecipe{
		ref: ref,
		key: recipeKey(parts...),
		build: func() (v1.Image, error) {
			base, err := mirror.DirLayer(rootfs)
			if err != nil {
				return nil, err
			}
			top, err := mirror.FilesLayer(files)
			if err != nil {
				return nil, err
			}
			spec.Ref = ref
			spec.Layers = []v1.Layer{base, top}
			if len(spec.Env) == 0 {
				spec.Env = []string{defaultPath}
			}
			return mirror.Assemble(spec)
		},
	}
}

// rootfsKey is the recipe key the root file system was built with (see rootfs).
func rootfsKey(dir string) string {
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(dir), ".recipe"))
	if err != nil {
		return "missing:" + dir
	}
	return string(raw)
}

// agnhostImage follows test/images/agnhost/Dockerfile: agnhost at /agnhost with an /agnhost-2 link,
// a CoreDNS binary at /coredns, porter's certificate and key, /uploads, and the ports it serves.
func agnhostImage(ref, rootfs string, k kubeBuild, bin, coredns string) imageRecipe {
	porter := filepath.Join(k.modDir, "test/images/agnhost/porter")
	files := []mirror.File{
		{Path: "/agnhost", Mode: 0o755, Src: bin},
		{Path: "/agnhost-2", Mode: fs.ModeSymlink | 0o777, Linkname: "agnhost"},
		{Path: "/coredns", Mode: 0o755, Src: coredns},
		{Path: "/localhost.crt", Mode: 0o644, Src: filepath.Join(porter, "localhost.crt")},
		{Path: "/localhost.key", Mode: 0o644, Src: filepath.Join(porter, "localhost.key")},
		{Path: "/uploads", Mode: fs.ModeDir | 0o755},
		{Path: "/usr/local/bin/iperf", Mode: fs.ModeSymlink | 0o777, Linkname: "/usr/bin/iperf"},
	}
	return rootfsImage(ref, rootfs, files, mirror.ImageSpec{
		Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, WorkingDir: "/",
		Ports: []string{"80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"},
	})
}

// registryConfig is the configuration the upstream registry image ships at the same path.
const registryConfig = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

// registryImage follows the upstream registry image: the binary at /bin/registry, its configuration
// at /etc/distribution/config.yml, storage under /var/lib/registry, port 5000.
func registryImage(ref, bin string) imageRecipe {
	files := []mirror.File{
		{Path: "/bin", Mode: fs.ModeDir | 0o755},
		{Path: "/bin/registry", Mode: 0o755, Src: bin},
		{Path: "/etc/distribution", Mode: fs.ModeDir | 0o755},
		{Path: "/etc/distribution/config.yml", Mode: 0o644, Data: []byte(registryConfig)},
		{Path: "/var/lib/registry", Mode: fs.ModeDir | 0o755},
	}
	return imageRecipe{
		ref: ref,
		key: recipeKey("registry-image", ref, fileKey(bin), fileKey(hostCABundle), registryConfig),
		build: func() (v1.Image, error) {
			base, err := mirror.FilesLayer(staticBase())
			if err != nil {
				return nil, err
			}
			app, err := mirror.FilesLayer(files)
			if err != nil {
				return nil, err
			}
			return mirror.Assemble(mirror.ImageSpec{Ref: ref, Layers: []v1.Layer{base, app},
				Entrypoint: []string{"/bin/registry"}, Cmd: []string{"serve", "/etc/distribution/config.yml"},
				Env: []string{defaultPath}, Ports: []string{"5000/tcp"}})
		},
	}
}
