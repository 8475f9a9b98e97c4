#!/usr/bin/env bash
# Makes sure rootful Podman's API service answers on /run/podman/podman.sock (what the podman
# driver talks to): installs Debian's podman when it is missing, and starts the service —
# systemd's podman.socket where systemd runs, else `podman system service` in the background.
#
# On a host whose hard limits for open files or processes are below what podman gives containers
# by default (nofile 1048576, nproc 4194304) and whose root lacks CAP_SYS_RESOURCE (this build
# machine's bounding set), runc cannot raise them and every container fails to start ("error
# setting rlimits for ready process"); then a drop-in caps podman's defaults at the host's limits. Docker's engine and its iptables rules are left
# alone: netavark adds its own chains beside Docker's.
set -euo pipefail
sock=/run/podman/podman.sock
answers() { curl -sf --max-time 5 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }
if answers; then
  exit 0
fi
if ! command -v podman >/dev/null 2>&1; then
  echo "==> installing Podman (Debian's podman)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman >/dev/null
fi
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
dropin=/etc/containers/containers.conf.d/mkube-ulimits.conf
low() { [ "$1" != unlimited ] && [ "$1" -lt "$2" ]; }
capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
can_raise=$(( (0x$capbnd >> 24) & 1 )) # CAP_SYS_RESOURCE is capability 24
if [ "$can_raise" = 0 ] && { low "$nofile" 1048576 || low "$nproc" 4194304; } && [ ! -e "$dropin" ]; then
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] && nproc=4194304
  # seen on such a host: podman 4.3 itself (and so conmon) runs with nproc 32768, and a container
  # cannot be given more than its parent has
  [ "$nproc" -gt 32768 ] && nproc=32768
  echo "==> capping podman's default ulimits at this host's hard limits ($dropin)"
  mkdir -p "$(dirname "$dropin")"
  printf '# hack/podman-up.sh: this host'"'"'s hard limits are below podman'"'"'s defaults\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc" >"$dropin"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl enable --now podman.socket
else
  echo "==> starting podman system service (log: /var/log/podman-service.log)"
  mkdir -p "$(dirname "$sock")"
  nohup podman system service --time=0 "unix://$sock" >/var/log/podman-service.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if answers; then exit 0; fi
  sleep 0.5
done
echo "podman-up: Podman's API service did not answer on $sock within 30 s; see /var/log/podman-service.log" >&2
exit 1
