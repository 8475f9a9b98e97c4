#!/usr/bin/env bash
# `make start`: from a fresh Debian machine to a running cluster, offline. Installs what is missing
# (Docker engine, debootstrap), builds mkube, the offline mirror and the node image (incremental:
# seconds when nothing changed), serves the mirror on loopback while mkube fills its cache from
# it, and starts the default cluster. Extra `mkube start` flags: MKUBE_START_FLAGS="--cpus 4".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
addr="${MIRROR_ADDR:-127.0.0.1:5080}"

hack/install-deps.sh
hack/docker-up.sh
make --no-print-directory build artifacts node-image

mirror_up() { curl -sf "http://$addr/v2/" >/dev/null 2>&1; }
if ! mirror_up; then
  out/mkube-mirror serve --dir out/mirror --addr "$addr" >out/mirror.log 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do mirror_up && break; sleep 0.1; done
  mirror_up || { echo "the mirror did not come up on $addr: see out/mirror.log" >&2; exit 1; }
fi
# shellcheck disable=SC2086
out/mkube start --binary-mirror="http://$addr/release" --image-repository="$addr" ${MKUBE_START_FLAGS:-}
echo
echo "kubectl: out/mkube kubectl -- get pods -A   (or any kubectl: the context is \"mkube\")"
