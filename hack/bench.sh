#!/usr/bin/env bash
# Benchmarks mkube's lifecycle with hyperfine (Debian's package) against the offline mirror:
# warm-cache start, time-to-k8s (start until an app answers on its NodePort), cold-cache start,
# restart of a stopped cluster, stop, delete. Results: out/bench/*.md and *.json.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
addr="${MIRROR_ADDR:-127.0.0.1:5080}"
runs="${RUNS:-3}"
mkdir -p out/bench
export MKUBE_HOME="$PWD/out/bench/home" KUBECONFIG="$PWD/out/bench/kubeconfig" MKUBE_IN_STYLE=false
curl -sf "http://$addr/v2/" >/dev/null || {
  out/mkube-mirror serve --dir out/mirror --addr "$addr" >out/bench/mirror.log 2>&1 &
  trap "kill $! 2>/dev/null" EXIT
  until curl -sf "http://$addr/v2/" >/dev/null; do sleep 0.1; done
}
flags="--binary-mirror=http://$addr/release --image-repository=$addr"
mk="out/mkube -p bench"
agnhost=$(python3 -c 'import json;print([m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open("out/mirror/images/index.json"))["manifests"] if "/agnhost:" in m["annotations"]["org.opencontainers.image.ref.name"]][-1])')
$mk delete >/dev/null 2>&1 || true
$mk start $flags >/dev/null && $mk cache add "$agnhost" >/dev/null

h() { name=$1; shift; hyperfine --runs "$runs" --export-markdown "out/bench/$name.md" --export-json "out/bench/$name.json" "$@"; }
h start-warm  --prepare "$mk delete" "$mk start $flags"
h time-to-k8s --prepare "$mk delete" "PROFILE=bench START_FLAGS='$flags' hack/time-to-k8s.sh"
h restart     --prepare "$mk stop" "$mk start"
h stop        --prepare "$mk start" "$mk stop"
h delete      --prepare "$mk start $flags" "$mk delete"
h start-cold  --prepare "$mk delete; rm -rf $MKUBE_HOME/cache" "$mk start $flags"
# More nodes (issue #14): a 3-node start, node add to a 2-node cluster, an --ha start.
h start-3-nodes --prepare "$mk delete" "$mk start --nodes=3 $flags"
h node-add      --prepare "$mk delete; $mk start --nodes=2 $flags" "$mk node add"
h start-ha      --prepare "$mk delete" "$mk start --ha $flags"
$mk delete >/dev/null
cat out/bench/*.md
