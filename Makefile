# mkube — build, test and the offline artifacts every test and offline start uses.
# `make help` lists the targets.

SHELL := /bin/bash
GO ?= go
# libvirt is loaded at run time (kvm2 driver), so building needs neither libvirt nor its headers.
export GOFLAGS := -buildvcs=false -tags=libvirt_dlopen
OUT ?= out
KUBERNETES_VERSION ?= stable
MIRROR_ADDR ?= 127.0.0.1:5080
MIRROR_DIR ?= $(OUT)/mirror
BUILD_DIR ?= $(OUT)/build
# out/ is a module of its own, so `go ... ./...` never walks build trees (a root file system being
# made has /proc mounted in it).
$(shell mkdir -p $(OUT) && { test -f $(OUT)/go.mod || echo 'module mkube.local/out' > $(OUT)/go.mod; })
# make test runs the packages that read pkg/release once more as a release build would be stamped
SHA_A := $(shell printf 'a%.0s' $$(seq 64))
TEST_STAMP := -X mkube/pkg/release.version=v9.9.9-test -X mkube/pkg/release.registry=rel.example/mkube -X mkube/pkg/release.digests=iso=sha256:$(SHA_A),node=sha256:$(SHA_A),storage-provisioner=sha256:$(SHA_A),dashboard=sha256:$(SHA_A)
# A release: its version, the registry path its artifacts are pushed to, where its binaries go.
VERSION ?= $(shell git describe --tags --always --dirty)
RELEASE_REGISTRY ?=
RELEASE_DIR ?= $(OUT)/release
FROM ?= $(MIRROR_DIR)
# make conformance: the profile (started with NODES nodes unless it runs), the specs, ginkgo processes.
PROFILE ?= conformance
NODES ?= 2
FOCUS ?= \[Conformance\]
SKIP ?=
PARALLEL ?= 4
ALLOW_DIRTY ?=
CGROUPV2_VERSIONS ?=

.PHONY: help start build mirror-tool artifacts e2e-images conformance mirror-serve node-image iso host-iso release release-mirror release-registry test integration test-cgroupv2 test-kvm2-nodes bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

start: ## fresh machine → running cluster: install deps, build everything, start the default cluster offline
	hack/start.sh

build: mirror-tool ## build the binaries into out/
	$(GO) build -o $(OUT)/ ./cmd/...

mirror-tool:
	$(GO) build -o $(OUT)/mkube-mirror ./cmd/mkube-mirror

artifacts: mirror-tool ## build the offline mirror for KUBERNETES_VERSION from source into out/mirror
	$(OUT)/mkube-mirror build --kubernetes-version $(KUBERNETES_VERSION) --mirror $(MIRROR_DIR) --work $(BUILD_DIR)

e2e-images: mirror-tool ## the mirror of KUBERNETES_VERSION plus the images Kubernetes' Conformance tests run (busybox, nginx, …), built from source
	$(OUT)/mkube-mirror build --test-images --kubernetes-version $(KUBERNETES_VERSION) --mirror $(MIRROR_DIR) --work $(BUILD_DIR)

conformance: build e2e-images ## Kubernetes' Conformance suite against PROFILE (started with NODES nodes unless it runs), offline; FOCUS, SKIP, PARALLEL; reports in out/conformance (summary.txt)
	$(OUT)/mkube-mirror conformance --kubernetes-version $(KUBERNETES_VERSION) --profile $(PROFILE) --nodes $(NODES) --focus '$(FOCUS)' --skip '$(SKIP)' --parallel $(PARALLEL) --mkube $(OUT)/mkube --mirror $(MIRROR_DIR) --work $(BUILD_DIR) --out $(OUT)/conformance

mirror-serve: mirror-tool ## serve out/mirror on MIRROR_ADDR (default 127.0.0.1:5080) in the foreground
	$(OUT)/mkube-mirror serve --dir $(MIRROR_DIR) --addr $(MIRROR_ADDR)

node-image: mirror-tool ## build the docker driver's node image into the local Docker engine
	hack/docker-up.sh
	$(OUT)/mkube-mirror node-image --work $(BUILD_DIR)

iso: mirror-tool ## build the bootable VM image out/mkube-<version>-amd64.iso (kvm2, virtualbox, hyperv)
	hack/install-deps.sh --iso
	$(OUT)/mkube-mirror iso --work $(BUILD_DIR)

host-iso: mirror-tool ## build out/cgroupv2-host.iso: a cgroup v2 workstation (Debian 12, systemd, Docker, Podman) the tests boot
	hack/install-deps.sh --iso
	$(OUT)/mkube-mirror iso --flavor host --work $(BUILD_DIR) --out $(OUT)/cgroupv2-host.iso

release: release-registry mirror-tool ## build and publish release VERSION: own artifacts pushed to RELEASE_REGISTRY, stamped mkube binaries in out/release
	hack/install-deps.sh --iso --release
	$(OUT)/mkube-mirror release --version $(VERSION) --registry $(RELEASE_REGISTRY) --out $(RELEASE_DIR) --work $(BUILD_DIR) $(if $(filter 1,$(ALLOW_DIRTY)),--allow-dirty)

release-mirror: release-registry mirror-tool ## push a mirror (FROM, default out/mirror built for KUBERNETES_VERSION) or an mkube cache to RELEASE_REGISTRY
	if [ "$(FROM)" = "$(MIRROR_DIR)" ]; then $(MAKE) artifacts; fi
	$(OUT)/mkube-mirror push --from $(FROM) --to $(RELEASE_REGISTRY) $(if $(filter $(MIRROR_DIR),$(FROM)),--kubernetes-version $(KUBERNETES_VERSION))

release-registry:
	@if [ -z "$(RELEASE_REGISTRY)" ]; then echo "RELEASE_REGISTRY is required: HOST[:PORT]/PATH, e.g. make $(MAKECMDGOALS) RELEASE_REGISTRY=registry.example.com/mkube" >&2; exit 1; fi

test: ## unit tests (fast; no Docker, no network), and mkube cross-compiled for Windows and macOS
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -ldflags '$(TEST_STAMP)' ./pkg/release ./pkg/cluster ./pkg/addons
	$(GO) test -count=1 -ldflags '$(TEST_STAMP)' -run 'TestNodeImageStep' ./pkg/start
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/mkube
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/mkube

integration: build artifacts e2e-images node-image iso host-iso ## end-to-end tests: real Docker engine, rootful Podman, real libvirt/QEMU (and a cgroup v2 host VM), the offline mirror
	hack/install-deps.sh --test --vm
	hack/libvirt-up.sh
	hack/podman-up.sh
	$(GO) test -tags integration,libvirt_dlopen -count=1 -timeout 75m -v ./test/integration/...

test-cgroupv2: build artifacts node-image host-iso ## the docker driver on a cgroup v2 host VM only, with a second profile beside the first (CGROUPV2_VERSIONS="v1.3x.y …", each built into the mirror; default: the default version)
	hack/install-deps.sh --test --vm
	hack/libvirt-up.sh
	MKUBE_CGROUPV2_VERSIONS="$(CGROUPV2_VERSIONS)" MKUBE_CGROUPV2_SIDE_BY_SIDE=1 $(GO) test -tags integration,libvirt_dlopen -count=1 -timeout 60m -v -run 'TestCgroupV2Host' ./test/integration/...

test-kvm2-nodes: build artifacts iso ## TestKVM2Cluster with two VMs (a worker joined, pod traffic between the VMs): about 35 minutes under software emulation, so not in CI
	hack/install-deps.sh --test --vm
	hack/libvirt-up.sh
	MKUBE_ITEST_KVM2_NODES=2 $(GO) test -tags integration,libvirt_dlopen -count=1 -timeout 60m -v -run 'TestKVM2Cluster' ./test/integration/...

bench: build ## time start (warm/cold cache), restart, stop, delete with hyperfine; results in out/bench
	hack/bench.sh

clean: ## remove build outputs (keeps out/build, the incremental build cache, unless CLEAN_ALL=1)
	rm -rf $(OUT)/mkube $(OUT)/mkube-mirror $(OUT)/storage-provisioner
	if [ "$(CLEAN_ALL)" = 1 ]; then rm -rf $(OUT); fi
