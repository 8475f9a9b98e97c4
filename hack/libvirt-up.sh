#!/usr/bin/env bash
# Starts libvirt's daemons when nothing runs them (CI machines have no systemd), for the kvm2
# driver and its tests. Idempotent.
set -euo pipefail
if virsh -c qemu:///system version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "libvirt-up: libvirtd does not answer: start it (sudo systemctl start libvirtd)" >&2
  exit 1
fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 50); do
  virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "libvirt-up: libvirtd did not come up" >&2
exit 1
