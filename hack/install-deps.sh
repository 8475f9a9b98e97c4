#!/usr/bin/env bash
# Installs what building the offline artifacts and running the tests need on a Debian host:
# debootstrap (base file systems), gcc and static libc (pause), the Docker engine; with --test also
# headless Chromium (the dashboard is checked in a real browser), Debian's docker-registry (a
# release is published to it) and podman (the podman driver's tests); --release the arm64 C cross-compiler; --iso what `make iso` needs; --vm
# qemu and libvirt for the kvm2 driver. Idempotent.
set -euo pipefail
need=()
for arg in "$@"; do
  case "$arg" in
  --test)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    # a real OCI registry (distribution) for the release tests; its service is not started here
    command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
    # runs the linux/arm64 release binary (with --release's arm64 C library)
    command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
    # rootful Podman for the podman driver's tests (hack/podman-up.sh starts its API service)
    command -v podman >/dev/null 2>&1 || need+=(podman)
    ;;
  --iso)
    command -v mksquashfs >/dev/null 2>&1 || need+=(squashfs-tools)
    command -v xorriso >/dev/null 2>&1 || need+=(xorriso)
    [ -e /usr/lib/ISOLINUX/isolinux.bin ] || need+=(isolinux)
    [ -e /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || need+=(syslinux-common)
    [ -e /bin/busybox ] || need+=(busybox-static)
    ;;
  --release)
    # cross-building the linux/arm64 mkube with cgo (its kvm2 driver)
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    ;;
  --vm)
    command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
    command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
    command -v libvirtd >/dev/null 2>&1 || need+=(libvirt-daemon-system)
    [ -e /usr/include/libvirt/libvirt.h ] || need+=(libvirt-dev)
    ;;
  esac
done
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${need[*]}: run as root, or apt-get install them" >&2
    exit 1
  fi
  echo "==> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "install-deps: Go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
