#!/usr/bin/env bash
# Installs the systemd units of the Novum services this host runs, for a deployment of several hosts
# (ops/systemd/README.md). As root, after `bash ops/install.sh --no-start` built the checkout.
#
#   bash ops/systemd/install.sh [--no-enable] [--unit-dir DIR] [--config-dir DIR] SERVICE...
#
# SERVICE: identity image network compute-api orchestration orchestration-engine conductor serialproxy compute,
# or `controller` (the API services, conductor and proxy) or `all` (those, an engine apart and compute). Units go to /etc/systemd/system (--unit-dir), pointing at this checkout; the
# settings file /etc/novum/novum.env (--config-dir) is made from novum.env.example when missing and never
# overwritten. Unless --no-enable, or without a running systemd, the units are enabled and started.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
UNIT_DIR=/etc/systemd/system
CONFIG_DIR=/etc/novum
ENABLE=1
CONTROLLER=(identity image network compute-api orchestration conductor serialproxy)
services=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-enable) ENABLE=0 ;;
    --unit-dir) UNIT_DIR=$2; shift ;;
    --config-dir) CONFIG_DIR=$2; shift ;;
    controller) services+=("${CONTROLLER[@]}") ;;
    all) services+=("${CONTROLLER[@]}" orchestration-engine compute) ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *)
      [ -f "$HERE/novum-$1.service" ] || { echo "no such service: $1" >&2; exit 2; }
      services+=("$1") ;;
  esac
  shift
done
[ ${#services[@]} -gt 0 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "ops/systemd/install.sh must run as root" >&2; exit 1; }

# The API services, the conductor and the proxy run as this unprivileged user; the compute agent as root.
getent passwd novum >/dev/null ||
  useradd --system --no-create-home --home-dir /var/lib/novum --shell /usr/sbin/nologin --comment 'Novum services' novum
mkdir -p "$CONFIG_DIR" "$UNIT_DIR"
if [ ! -e "$CONFIG_DIR/novum.env" ]; then
  install -m 0640 -g novum "$HERE/novum.env.example" "$CONFIG_DIR/novum.env"
  echo "wrote $CONFIG_DIR/novum.env: set its CHANGE-ME values before starting the services" >&2
fi
for service in "${services[@]}"; do
  sed -e "s#@NOVUM_ROOT@#$ROOT#g" -e "s#/etc/novum/novum.env#$CONFIG_DIR/novum.env#g" \
    "$HERE/novum-$service.service" >"$UNIT_DIR/novum-$service.service"
  echo "installed $UNIT_DIR/novum-$service.service"
done
if [ $ENABLE = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now "${services[@]/#/novum-}"
fi
