// Package cache is mkube's download cache under $MKUBE_HOME/cache: Kubernetes binaries, the VM
// ISO and container images, what a start needs so that a filled cache needs no network at all.
//
//	binaries/linux/amd64/<version>/{kubeadm,kubelet,kubectl}[.sha256], images.txt   (Downloader.File, PullBinaries)
//	iso/<name>.iso[.sha256]                                                          (ISO, PullISO)
//	images/ (an OCI image layout; blobs being pulled in images/.partial/), images.lock (Images, ImageStore)
//
// Files are fetched through one HTTP transport (Transport) with connect, TLS and header timeouts
// and a stall guard, with a progress bar, and checked against the sha256 their source publishes
// beside them (URL.sha256, dl.k8s.io's format), or, from an OCI registry (mkube's own artifacts,
// a mirror's binaries), against the digest in their manifest, resumably (FetchBlob).
//
// # The digest-file rule
//
// A cached file F is complete and verified if and only if F.sha256 exists beside it and holds F's
// hex sha256 as its first field. The record is written only after F was verified (hashed while
// written, compared with the published digest) and renamed into place: Commit does both, in that
// order, after dropping any older record, and writes the record itself atomically. Readers trust F
// only then:
//
//   - Verified(F) checks the rule in full (the record is there and F still hashes to it): what
//     decides whether F must be fetched (again).
//   - Recorded(F) returns the record without reading F, for a reader that needs the digest of a
//     file the cache has just verified (node.InstallBinaries and the PKI copy, the kvm2 driver naming its ISO volume);
//     Digest(F) falls back to hashing a file that has no record.
//
// A crash before the record is written leaves F without one: not trusted, fetched again, never used
// as good. Binaries and ISOs both follow this rule and nothing else (there is no other marker),
// whether they come from a URL or a registry (FetchBlob, whose partial downloads are dot-files
// beside the entry); image blobs live in the OCI layout, whose content addressing and atomically
// replaced index.json give the same guarantee (see ImageStore.Put): a blob enters blobs/ only whole
// and verified, and has no record beside it.
//
// The image cache is shared by every mkube process: readers hold a shared flock on images.lock,
// writers (a pull, `mkube cache delete`) an exclusive one.
package cache
