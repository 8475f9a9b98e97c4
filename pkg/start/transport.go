package start

import (
	"net"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"mkube/pkg/cache"
	"mkube/pkg/config"
	"mkube/pkg/reason"
)

// Binaries and images from a mirror end up running as root in the node, and only binaries are
// checked against a digest fetched from the same mirror. Over plain HTTP anyone on the path to a
// mirror can replace both, so plain HTTP is accepted only to this machine (loopback) or to hosts
// the user vouches for with --insecure-registry (minikube's flag, which names the registries a
// cluster may reach over plain HTTP; here it also covers the binary mirror's host).

// plainHTTPPrefix marks a stored image repository that is reached over plain HTTP because the
// user listed it in --insecure-registry; cache.ImageSource reads it (as name.Insecure), so every
// pull of the profile's images honours the choice without the list being passed around.
const plainHTTPPrefix = "http://"

// checkMirrorTransport validates a new profile's --binary-mirror, --image-repository and --mirror against
// insecure (--insecure-registry), and marks a listed image repository as plain HTTP.
func checkMirrorTransport(p *config.Profile, insecure []string, existing bool) error {
	if existing {
		return nil // validated when it was created; start flags do not change a profile
	}
	if err := checkBinaryMirror(p.BinaryMirror, insecure); err != nil {
		return err
	}
	repo, err := registryTransport("--image-repository", p.ImageRepository, insecure)
	if err != nil {
		return err
	}
	mirror, err := registryTransport("--mirror", p.Mirror, insecure)
	if err != nil {
		return err
	}
	p.ImageRepository, p.Mirror = repo, mirror
	return nil
}

// checkBinaryMirror refuses an http:// mirror on a host that is neither loopback nor listed.
func checkBinaryMirror(mirror string, insecure []string) error {
	if mirror == "" {
		return nil
	}
	u, err := url.Parse(mirror)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return nil // https and file need no vouching; a malformed URL fails where it is used
	}
	if cache.Loopback(u.Hostname()) || listedInsecure(u.Host, insecure) {
		return nil
	}
	return reason.Errorf(reason.Usage, "",
		"--binary-mirror %s is plain HTTP to another machine, where anyone on the way can replace the binaries: use https, or --insecure-registry %s if you trust the network to it",
		mirror, u.Host)
}

// registryTransport returns a registry path given as flag (--image-repository, --mirror) as it is stored: with plainHTTPPrefix when it
// is listed in insecure. An unlisted repository that go-containerregistry would try over plain
// HTTP (a private address or *.localhost name: its heuristic falls back to http there) is refused;
// loopback ones are plain HTTP already (cache.ImageSource), and public names are https only.
func registryTransport(flag, repo string, insecure []string) (string, error) {
	if repo == "" {
		return "", nil
	}
	bare, plain := strings.CutPrefix(repo, plainHTTPPrefix)
	bare = strings.TrimPrefix(bare, "https://")
	host := strings.SplitN(bare, "/", 2)[0]
	reg, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil || host == "" {
		return "", reason.Errorf(reason.Usage, "", "%s %q does not start with a registry host: use HOST[:PORT][/PATH]", flag, repo)
	}
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	switch {
	case cache.Loopback(hostname):
		return bare, nil // cache.ImageSource pulls loopback registries over plain HTTP
	case listedInsecure(host, insecure):
		return plainHTTPPrefix + bare, nil
	case plain || reg.Scheme() == "http":
		return "", reason.Errorf(reason.Usage, "",
			"%s %s would be pulled over plain HTTP from another machine, where anyone on the way can replace the images: serve it over https under a name, or pass --insecure-registry %s if you trust the network to it",
			flag, repo, host)
	}
	return bare, nil
}

// listedInsecure reports whether hostport (HOST or HOST:PORT) matches an --insecure-registry
// entry: HOST:PORT matches exactly, HOST matches on any port, and a CIDR matches addresses in it.
func listedInsecure(hostport string, insecure []string) bool {
	hostport = strings.ToLower(hostport)
	hostname := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostname = h
	}
	hostname = strings.TrimSuffix(strings.TrimPrefix(hostname, "["), "]")
	for _, e := range insecure {
		e = strings.ToLower(strings.TrimSpace(e))
		e = strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")
		e = strings.TrimSuffix(e, "/")
		if e == "" {
			continue
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil {
			if ip := net.ParseIP(hostname); ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		if e == hostport || strings.TrimSuffix(strings.TrimPrefix(e, "["), "]") == hostname {
			return true
		}
	}
	return false
}
