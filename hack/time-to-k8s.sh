#!/usr/bin/env bash
# One time-to-k8s run, as the public benchmark measures it: `mkube start`, then until a deployed
# app answers through its NodePort. Expects a filled cache (and the agnhost image in it).
set -euo pipefail
mk="${MKUBE:-out/mkube} -p ${PROFILE:-bench}"
$mk start ${START_FLAGS:-} >/dev/null
img=$($mk cache list | grep /agnhost:)
$mk kubectl -- create deployment echo --image="$img" -- /agnhost netexec --http-port=8080 >/dev/null
$mk kubectl -- expose deployment echo --type=NodePort --port=8080 >/dev/null
url="http://$($mk ip):$($mk kubectl -- get svc echo -o jsonpath='{.spec.ports[0].nodePort}')/hostname"
until curl -sf -m 1 "$url" >/dev/null; do sleep 0.1; done
