#!/usr/bin/env bash
# A test deployment of N hosts on one machine: each host is a network namespace with its own address on a
# management bridge, so that each runs its own compute agent (its own bridges, VXLAN devices, guests and
# firewall) while all share this machine's PostgreSQL and RabbitMQ, reached through a relay on the bridge.
#
#   netns-hosts.sh up N        namespaces novumh1..novumhN (10.231.0.11.., bridge novumhbr 10.231.0.1/24),
#                              a data dir for each (/run/novum-multihost/novumh/novumhI/data, on a shared
#                              mount) and a /run/netns of its own beside it,
#                              and the relay 10.231.0.1:5432 -> 127.0.0.1:5432, :5672 -> 127.0.0.1:5672
#   netns-hosts.sh exec I CMD  runs CMD as host I: in its network namespace, with a /sys/class/net of its own
#                              (as `ip netns exec`), while /run/netns and the cgroups stay the machine's, so the
#                              namespaces and cgroups its agent makes outlive the agent, as on a real host
#   netns-hosts.sh down        stops what runs in the hosts (by PID), removes them, the bridge and the relay
#   netns-hosts.sh status      lists the hosts, their addresses and data dirs
#
# NOVUM_NETNS_PREFIX (novumh) and NOVUM_NETNS_SUBNET (10.231.0) name another deployment beside this one.
set -euo pipefail

PREFIX=${NOVUM_NETNS_PREFIX:-novumh}
SUBNET=${NOVUM_NETNS_SUBNET:-10.231.0}
BRIDGE=${PREFIX}br
RUN_DIR=/run/novum-multihost/$PREFIX
RELAY_PORTS=${NOVUM_NETNS_RELAY_PORTS:-5432 5672}
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "netns-hosts: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, bridges)"
case "$PREFIX" in novum*) ;; *) die "NOVUM_NETNS_PREFIX must start with novum" ;; esac

hosts() { ip netns list | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+$" | sort -V || true; }

up() {
  local n=${1:?usage: netns-hosts.sh up N}
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] || die "N must be 1..200"
  mkdir -p "$RUN_DIR"
  # The hosts' data dirs live here, on a shared mount (as ip-netns does for /run/netns): the mounts an agent
  # makes (its containers' root filesystems) are seen by the machine and by the agent's next start, as on a
  # real host, even where / is a private mount.
  if ! mountpoint -q "$RUN_DIR"; then
    mount --bind "$RUN_DIR" "$RUN_DIR"
    mount --make-shared "$RUN_DIR"
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
    # Every host hears the VXLAN multicast group, whether or not the bridge saw it joined.
    echo 0 >"/sys/class/net/$BRIDGE/bridge/multicast_snooping"
    ip addr add "$SUBNET.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  for i in $(seq 1 "$n"); do
    local ns=$PREFIX$i
    ip netns list | grep -qE "^$ns( |$)" || ip netns add "$ns"
    if ! ip link show "$ns" >/dev/null 2>&1; then
      ip link add "$ns" type veth peer name eth0 netns "$ns"
      ip -n "$ns" addr add "$SUBNET.$((10 + i))/24" dev eth0
    fi
    ip link set "$ns" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace default via "$SUBNET.1"
    mkdir -p "$RUN_DIR/$ns/data" "$RUN_DIR/$ns/netns"
  done
  if [ ! -s "$RUN_DIR/relay.pid" ] || ! kill -0 "$(cat "$RUN_DIR/relay.pid")" 2>/dev/null; then
    local pairs=()
    for port in $RELAY_PORTS; do pairs+=("$SUBNET.1:$port=127.0.0.1:$port"); done
    setsid node "$HERE/relay.mjs" "${pairs[@]}" >"$RUN_DIR/relay.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/relay.pid"
    for _ in $(seq 1 50); do grep -q listening "$RUN_DIR/relay.log" 2>/dev/null && break; sleep 0.1; done
    [ "$(grep -c listening "$RUN_DIR/relay.log")" -ge "$(wc -w <<<"$RELAY_PORTS")" ] ||
      die "the relay did not start: $(cat "$RUN_DIR/relay.log")"
  fi
  status
}

run_in() {
  local i=${1:?usage: netns-hosts.sh exec I COMMAND...}; shift
  local ns=$PREFIX$i
  [ -e "/run/netns/$ns" ] || die "no host $ns (netns-hosts.sh up first)"
  # A mount namespace of its own, where
  # - /sys sends no mount back to the machine, and a sysfs mounted from inside the host's network namespace
  #   shows that namespace's devices (as `ip netns exec` does), with the machine's cgroup mounts bound back
  #   under it (from the shell's working directory, which still is the old /sys/fs/cgroup);
  # - /run/netns is the host's own (its dir under the shared mount), as on a real host: the namespaces its
  #   agent names (one per guest, one per network for metadata) never meet another host's, and the machine
  #   sees them under /run/novum-multihost/<prefix>/<host>/netns;
  # - everything else, the data dirs included, stays shared with the machine.
  exec nsenter --net="/run/netns/$ns" unshare --mount --propagation unchanged sh -c '
    dir=$1 && netns=$2 && shift 2 &&
    cd /sys/fs/cgroup &&
    mount --make-rslave /sys &&
    mount -t sysfs novum-sysfs /sys &&
    mount --no-canonicalize --rbind . /sys/fs/cgroup &&
    mount --make-rslave /run/netns &&
    mount --bind "$netns" /run/netns &&
    cd "$dir" &&
    exec "$@"' sh "$PWD" "$RUN_DIR/$ns/netns" "$@"
}

down() {
  for ns in $(hosts); do
    for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns"
    ip link delete "$ns" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  if [ -s "$RUN_DIR/relay.pid" ]; then
    local relay
    relay=$(cat "$RUN_DIR/relay.pid")
    kill "$relay" 2>/dev/null || true
    # Its log is open on the mount until it is gone.
    for _ in $(seq 1 50); do kill -0 "$relay" 2>/dev/null || break; sleep 0.1; done
  fi
  if mountpoint -q "$RUN_DIR"; then umount -R "$RUN_DIR" || umount -Rl "$RUN_DIR"; fi
  rm -rf --one-file-system "$RUN_DIR"
}

status() {
  for ns in $(hosts); do
    echo "$ns $(ip -n "$ns" -o -4 addr show dev eth0 | awk '{print $4}') $RUN_DIR/$ns/data"
  done
}

case "${1:-}" in
  up) shift; up "$@" ;;
  exec) shift; run_in "$@" ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
