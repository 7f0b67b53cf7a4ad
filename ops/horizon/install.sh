#!/usr/bin/env bash
# Installs the OpenStack dashboard (Horizon) and its Heat panels from Debian, configures them for a Novum
# cloud and serves them on loopback (ops/horizon/serve.sh: a private Apache with mod_wsgi). Idempotent:
# running it again rewrites the settings and restarts the dashboard.
#
#   bash ops/horizon/install.sh [--keystone-url URL] [--port PORT] [--no-start]
#
# URL defaults to NOVUM_HORIZON_KEYSTONE_URL or http://127.0.0.1:5000/identity/v3 (the all-in-one cloud of
# ops/install.sh), PORT to NOVUM_HORIZON_PORT or 8080.
set -euo pipefail
cd "$(dirname "$0")"
KEYSTONE_URL=${NOVUM_HORIZON_KEYSTONE_URL:-http://127.0.0.1:5000/identity/v3}
PORT=${NOVUM_HORIZON_PORT:-8080}
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --keystone-url) KEYSTONE_URL=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ops/horizon/install.sh must run as root" >&2; exit 1; }
log() { printf '\033[1m== %s\033[0m\n' "$*"; }

PACKAGES=(openstack-dashboard python3-heat-dashboard apache2 libapache2-mod-wsgi-py3)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "Debian packages: ${missing[*]}"
  apt-get update -qq
  # No recommends: openstack-dashboard-apache would enable a site on the host Apache's port 80.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

log "Horizon settings for Novum (/etc/openstack-dashboard/local_settings.d/_9900_novum.py)"
install -m 0644 novum_settings.py /etc/openstack-dashboard/local_settings.d/_9900_novum.py
sed -i "s|@KEYSTONE_URL@|$KEYSTONE_URL|" /etc/openstack-dashboard/local_settings.d/_9900_novum.py

[ $START = 1 ] || exit 0
log "serve on 127.0.0.1:$PORT"
bash ./serve.sh --port "$PORT"
