package artifacts

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mkube/pkg/mirror"
)

// e2eImage is one entry of the image manifest Kubernetes' e2e suite pulls from
// (test/utils/image/manifest.go of k8s.io/kubernetes at the cluster's version).
type e2eImage struct {
	Name string // the manifest's name for it: BusyBox, Agnhost, …
	Repo string // registry.k8s.io/e2e-test-images/busybox
	Tag  string
}

func (i e2eImage) Ref() string { return i.Repo + ":" + i.Tag }

var (
	manifestRegistry = regexp.MustCompile(`(?m)^\s*(\w+Registry):\s*"([^"]+)",`)
	manifestConfig   = regexp.MustCompile(`configs\[(\w+)\]\s*=\s*Config\{list\.(\w+),\s*"([^"]+)",\s*"([^"]+)"\}`)
)

// e2eManifest reads the manifest's default registries and its images. Reading the source
// instead of asking a built e2e.test (--list-images) lets the mirror build the images without
// the suite, which takes far longer to compile than they do.
func e2eManifest(src []byte) ([]e2eImage, error) {
	registries := map[string]string{}
	for _, m := range manifestRegistry.FindAllSubmatch(src, -1) {
		registries[string(m[1])] = string(m[2])
	}
	var out []e2eImage
	for _, m := range manifestConfig.FindAllSubmatch(src, -1) {
		reg, ok := registries[string(m[2])]
		if !ok {
			return nil, fmt.Errorf("e2e image manifest: %s is in %s, which has no default", m[1], m[2])
		}
		out = append(out, e2eImage{Name: string(m[1]), Repo: reg + "/" + string(m[3]), Tag: string(m[4])})
	}
	if len(out) == 0 || len(registries) == 0 {
		return nil, fmt.Errorf("e2e image manifest: no images found (its format changed?)")
	}
	return out, nil
}

// conformanceImages are the manifest's images that Conformance-labelled specs run, at any
// supported version (found by reading the specs; docs/research/conformance-15.md). The mirror
// builds each of them; the others (CSI sidecars, node-perf, volume servers, …) serve specs
// outside Conformance.
var conformanceImages = []string{
	"Agnhost", "AgnhostPrev", "APIServer", "BusyBox", "Etcd", "GlibcDnsTesting", "Httpd", "HttpdNew",
	"JessieDnsutils", "Kitten", "Nautilus", "Nginx", "NginxNew", "Nonewprivs", "NonRoot", "Pause",
}

// conformanceManifest reads the e2e image manifest in the k8s.io/kubernetes module at modDir and
// keeps the images Conformance runs.
func conformanceManifest(modDir string) ([]e2eImage, error) {
	src, err := os.ReadFile(filepath.Join(modDir, "test/utils/image/manifest.go"))
	if err != nil {
		return nil, err
	}
	all, err := e2eManifest(src)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(img e2eImage) bool { return !slices.Contains(conformanceImages, img.Name) }), nil
}

// e2eRootfsRecipes are the Debian file systems under the test images: nginx's, httpd's (Debian's
// apache2 laid out like the upstream httpd image), the DNS tools', and the one busybox is taken from.
var e2eRootfsRecipes = []rootfsRecipe{
	{name: "e2e-nginx-base", packages: []string{"nginx-light"}, extraKey: nginxConf, post: nginxPost},
	{name: "e2e-httpd-base", packages: []string{"apache2"}, extraKey: httpdForeground + httpdSite, post: httpdPost},
	{name: "e2e-dns-base", packages: []string{"dnsutils"}},
	// Upstream's busybox image is busybox 1.37.0: trixie has that version. Its ash keeps
	// environment variables with names no shell variable can have (Conformance checks
	// "data-1=value-1" in `sh -c env`); Debian patches ash to drop them, so four specs still fail
	// with this binary: building busybox from the pristine source is the fix (issue #15).
	{name: "e2e-busybox-src", packages: []string{"busybox-static"}, suite: "trixie"},
}

// testImages builds the images Conformance needs at this version, under the manifest's names and
// tags, next to the cluster's images in the mirror. It returns their references.
func (b *builder) testImages(ctx context.Context, k kubeBuild, c components) ([]imageRecipe, error) {
	imgs, err := conformanceManifest(k.modDir)
	if err != nil {
		return nil, err
	}
	want := map[string]e2eImage{}
	for _, img := range imgs {
		want[img.Name] = img
	}
	bases := map[string]string{}
	for _, r := range e2eRootfsRecipes {
		if r.name == "e2e-httpd-base" && want["Httpd"].Tag == "" {
			continue // only Kubernetes 1.34 and older run httpd
		}
		if bases[r.name], err = b.rootfs(ctx, r); err != nil {
			return nil, err
		}
	}
	agnhostBase := filepath.Join(b.opts.Work, "rootfs", "agnhost-base", "fs")
	busybox := filepath.Join(bases["e2e-busybox-src"], "usr", "bin", "busybox")
	var recipes []imageRecipe
	for _, name := range conformanceImages {
		img, ok := want[name]
		if !ok {
			continue
		}
		ref := img.Ref()
		switch name {
		case "Agnhost", "Pause":
			// The cluster's own build: the tag is the same (checked below for pause).
			if name == "Agnhost" && img.Tag != k.agnhostVersion {
				return nil, fmt.Errorf("e2e wants agnhost %s but k8s.io/kubernetes %s ships %s", img.Tag, b.opts.Version, k.agnhostVersion)
			}
			if name == "Pause" && ref != c.pauseRef {
				return nil, fmt.Errorf("e2e wants %s but kubeadm runs %s", ref, c.pauseRef)
			}
		case "AgnhostPrev":
			// The previous agnhost release is not in any tagged k8s.io/kubernetes: the specs that
			// use it only need a second, working agnhost to roll to, stamped with its version.
			bin, err := b.agnhostAt(ctx, k, img.Tag)
			if err != nil {
				return nil, err
			}
			recipes = append(recipes, agnhostImage(ref, agnhostBase, k, bin, c.coredns))
		case "Etcd":
			if ref == c.etcdRef {
				continue
			}
			bin, err := b.goModuleBinary(ctx, "etcd", "go.etcd.io/etcd/server/v3", "v"+strings.SplitN(img.Tag, "-", 2)[0], "go.etcd.io/etcd/server/v3", "")
			if err != nil {
				return nil, err
			}
			recipes = append(recipes, binaryImage(ref, bin, "/usr/local/bin/etcd", []string{"/usr/local/bin/etcd"}, ""))
		case "APIServer":
			// sample-apiserver 1.29.2 is k8s.io/sample-apiserver v0.29.2 (its Makefile checks out that tag).
			bin, err := b.goModuleBinary(ctx, "sample-apiserver", "k8s.io/sample-apiserver", "v0."+strings.TrimPrefix(img.Tag, "1."), "k8s.io/sample-apiserver", "")
			if err != nil {
				return nil, err
			}
			recipes = append(recipes, binaryImage(ref, bin, "/sample-apiserver", []string{"/sample-apiserver"}, ""))
		case "BusyBox":
			recipes = append(recipes, busyboxImage(ref, busybox, ""))
		case "NonRoot":
			recipes = append(recipes, busyboxImage(ref, busybox, "1234")) // FROM busybox, USER 1234
		case "Nginx", "NginxNew":
			recipes = append(recipes, rootfsImage(ref, bases["e2e-nginx-base"], []mirror.File{versionFile("nginx", img.Tag)},
				mirror.ImageSpec{Cmd: []string{"nginx", "-g", "daemon off;"}, Ports: []string{"80/tcp"}}))
		case "Httpd", "HttpdNew":
			recipes = append(recipes, rootfsImage(ref, bases["e2e-httpd-base"], []mirror.File{versionFile("httpd", img.Tag)},
				mirror.ImageSpec{Cmd: []string{"httpd-foreground"}, Ports: []string{"80/tcp"}}))
		case "GlibcDnsTesting", "JessieDnsutils":
			recipes = append(recipes, rootfsImage(ref, bases["e2e-dns-base"], nil, mirror.ImageSpec{Cmd: []string{"bash"}}))
		case "Kitten", "Nautilus":
			recipes = append(recipes, pictureImage(ref, agnhostBase, k, c.coredns, strings.ToLower(name)))
		case "Nonewprivs":
			bin, err := b.kubeTestBinary(ctx, k, "nnp", "test/images/nonewprivs", "")
			if err != nil {
				return nil, err
			}
			recipes = append(recipes, nonewprivsImage(ref, bin))
		}
	}
	return recipes, nil
}

// versionFile makes two tags of one recipe (nginx 1.27.0-2 and 1.28.0-2) different images, as
// upstream's are: a rolling update from one to the other then really changes the image.
func versionFile(name, tag string) mirror.File {
	return mirror.File{Path: "/etc/mkube-e2e-image", Mode: 0o644, Data: []byte(name + " " + tag + "\n")}
}

// agnhostAt builds agnhost stamped as version (agnhost --version), from the cluster's module.
func (b *builder) agnhostAt(ctx context.Context, k kubeBuild, version string) (string, error) {
	return b.kubeTestBinary(ctx, k, "agnhost-"+version, "test/images/agnhost", "-X main.Version="+version)
}

// kubeTestBinary builds a main package of k8s.io/kubernetes (a test image's program) in the
// cluster's wrapper module, whose packages the Go cache mostly has.
func (b *builder) kubeTestBinary(ctx context.Context, k kubeBuild, name, pkg, ldflags string) (string, error) {
	gov, err := b.goVersion(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(k.dir, "test-"+name)
	out := filepath.Join(dir, name)
	key := recipeKey("kube-test-binary", b.opts.Version.String(), gov, name, pkg, ldflags)
	if fresh(dir, key, out) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b.logf("building %s from k8s.io/kubernetes %s", pkg, b.opts.Version)
	if err := b.run(ctx, k.dir, goEnv, "go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w "+ldflags), "-o", out, "k8s.io/kubernetes/"+pkg); err != nil {
		return "", err
	}
	return out, markFresh(dir, key)
}

// busyboxImage follows the docker-library busybox image e2e's is built FROM: a static busybox
// with a link for every applet in /bin, on the static base; Cmd sh.
func busyboxImage(ref, busybox, user string) imageRecipe {
	return imageRecipe{
		ref: ref,
		key: recipeKey("busybox-image", ref, fileKey(busybox), fileKey(hostCABundle), user),
		build: func() (v1.Image, error) {
			out, err := runOutput(busybox, "--list")
			if err != nil {
				return nil, fmt.Errorf("busybox --list: %w", err)
			}
			files := []mirror.File{{Path: "/bin", Mode: fs.ModeDir | 0o755}, {Path: "/bin/busybox", Mode: 0o755, Src: busybox}}
			for _, applet := range strings.Fields(out) {
				if applet != "busybox" && !strings.Contains(applet, "/") {
					files = append(files, mirror.File{Path: "/bin/" + applet, Mode: fs.ModeSymlink | 0o777, Linkname: "busybox"})
				}
			}
			base, err := mirror.FilesLayer(staticBase())
			if err != nil {
				return nil, err
			}
			bin, err := mirror.FilesLayer(files)
			if err != nil {
				return nil, err
			}
			return mirror.Assemble(mirror.ImageSpec{Ref: ref, Layers: []v1.Layer{base, bin}, Cmd: []string{"sh"},
				Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, User: user})
		},
	}
}

// pictureImage is kitten's or nautilus's: agnhost serving a picture and data.json from / (upstream:
// FROM agnhost, COPY html/…, CMD test-webserver).
func pictureImage(ref, rootfs string, k kubeBuild, coredns, name string) imageRecipe {
	html := filepath.Join(k.modDir, "test/images", name, "html")
	r := agnhostImage(ref, rootfs, k, k.bin("agnhost"), coredns)
	files := []mirror.File{
		{Path: "/" + name + ".jpg", Mode: 0o644, Src: filepath.Join(html, name+".jpg")},
		{Path: "/data.json", Mode: 0o644, Src: filepath.Join(html, "data.json")},
	}
	if name == "kitten" {
		// Upstream's kitten is built on Alpine, and the ImageVolume Conformance spec reads the
		// image's /etc/os-release to recognise it. Ours is Debian's userland (no Alpine packages
		// are reachable here); the comment line names both, truthfully.
		files = append(files, mirror.File{Path: "/etc/os-release", Mode: 0o644, Data: []byte(kittenOSRelease)})
	}
	return withFiles(r, files, []string{"test-webserver"})
}

const kittenOSRelease = `# kitten: upstream's image is built on Alpine Linux; mkube's is built from source on Debian.
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
`

// withFiles adds a layer of files on top of a recipe's image, with another Cmd.
func withFiles(r imageRecipe, files []mirror.File, cmd []string) imageRecipe {
	parts := []string{"with-files", r.key, fmt.Sprint(cmd)}
	for _, f := range files {
		parts = append(parts, f.Path, fileKey(f.Src), string(f.Data))
	}
	build := r.build
	return imageRecipe{
		ref: r.ref,
		key: recipeKey(parts...),
		build: func() (v1.Image, error) {
			img, err := build()
			if err != nil {
				return nil, err
			}
			return mirror.AppendFiles(img, files, cmd)
		},
	}
}

// nonewprivsImage follows test/images/nonewprivs: nnp, setuid and setgid root, which prints the
// effective uid; the spec checks that allowPrivilegeEscalation=false keeps it at the pod's user.
func nonewprivsImage(ref, bin string) imageRecipe {
	return imageRecipe{
		ref: ref,
		key: recipeKey("nonewprivs-image", ref, fileKey(bin), fileKey(hostCABundle)),
		build: func() (v1.Image, error) {
			base, err := mirror.FilesLayer(staticBase())
			if err != nil {
				return nil, err
			}
			app, err := mirror.FilesLayer([]mirror.File{{Path: "/usr/local/bin/nnp", Mode: 0o755 | fs.ModeSetuid | fs.ModeSetgid, Src: bin}})
			if err != nil {
				return nil, err
			}
			return mirror.Assemble(mirror.ImageSpec{Ref: ref, Layers: []v1.Layer{base, app}, Cmd: []string{"nnp"},
				Env: []string{defaultPath}})
		},
	}
}

// nginxConf is the docker-library nginx image's setup: the site in /usr/share/nginx/html on
// port 80, logs to the container's stdout and stderr.
const nginxConf = `user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /dev/stderr notice;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log /dev/stdout;
	sendfile on;
	keepalive_timeout 65;
	server {
		listen 80;
		listen [::]:80;
		server_name localhost;
		location / {
			root /usr/share/nginx/html;
			index index.html index.htm;
		}
	}
}
`

const nginxIndex = "<!DOCTYPE html>\n<html>\n<head><title>Welcome to nginx!</title></head>\n<body>\n<h1>Welcome to nginx!</h1>\n</body>\n</html>\n"

func nginxPost(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "etc/nginx/nginx.conf"), []byte(nginxConf), 0o644); err != nil {
		return err
	}
	html := filepath.Join(dir, "usr/share/nginx/html")
	if err := os.MkdirAll(html, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(html, "index.html"), []byte(nginxIndex), 0o644); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(dir, "var/log/nginx"), 0o755)
}

// httpdForeground starts Debian's apache2 the way the upstream httpd image's httpd-foreground
// starts httpd: in the foreground, logging to the container's output.
const httpdForeground = `#!/bin/sh
set -e
rm -f /run/apache2/apache2.pid
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
exec apache2 -DFOREGROUND "$@"
`

// httpdSite serves /usr/local/apache2/htdocs, the upstream image's DocumentRoot: StatefulSet
// specs move its index.html away to fail the readiness probe.
const httpdSite = `<VirtualHost *:80>
	DocumentRoot /usr/local/apache2/htdocs
	<Directory /usr/local/apache2/htdocs>
		Require all granted
	</Directory>
	ErrorLog /proc/self/fd/2
	CustomLog /proc/self/fd/1 combined
</VirtualHost>
`

func httpdPost(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "usr/local/bin/httpd-foreground"), []byte(httpdForeground), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/apache2/sites-available/000-default.conf"), []byte(httpdSite), 0o644); err != nil {
		return err
	}
	docs := filepath.Join(dir, "usr/local/apache2/htdocs")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(docs, "index.html"), []byte("<html><body><h1>It works!</h1></body></html>\n"), 0o644); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(dir, "var/log/apache2"), 0o755)
}
