#!/usr/bin/env bash
# Runs Tempest against a Novum cloud and prints "passed/failed/skipped" and the failures.
#
#   test/tempest/run.sh [REGEX]            start a cloud from $NOVUM_DIST (default dist/) and test it
#   NOVUM_DATA_DIR=/var/lib/novum test/tempest/run.sh [REGEX]   test the running cloud of that data dir
#
# REGEX defaults to tier 1 of ../shared/tempest/README.md (versions, flavors, keypairs, limits, basic
# servers, server groups, availability zones). TEMPEST_PORT_BASE (default 20400) sets the
# ports of a cloud this script starts; TEMPEST_INCLUDE_LIST=file runs an include list instead of a regex;
# TEMPEST_EXCLUDE=regex leaves out tests known to need what Novum does not have yet. The exit status is 0
# only when at least one test ran and none failed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TEMPLATES="${TEMPEST_TEMPLATES:-$ROOT/../shared/tempest}"
REGEX="${1:-^tempest\.api\.compute\.(test_versions|flavors|keypairs|limits|servers\.(test_create_server|test_servers|test_list_server_filters|test_list_servers_negative|test_servers_negative|test_delete_server|test_server_group|test_multiple_create|test_server_addresses|test_availability_zone))}"
WORK="$(mktemp -d /tmp/novum-tempest.XXXXXX)"
CLOUD_PID=""
STATUS=1

cleanup() {
  if [[ -n "$CLOUD_PID" ]]; then
    kill "$CLOUD_PID" 2>/dev/null || true
    wait "$CLOUD_PID" 2>/dev/null || true
  fi
  # A passing run leaves nothing behind; a failing one keeps its workspace and log to read.
  if [[ "$STATUS" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [[ -n "${NOVUM_DATA_DIR:-}" && -f "$NOVUM_DATA_DIR/ready.json" ]]; then
  DATA_DIR="$NOVUM_DATA_DIR"
else
  DATA_DIR="$WORK/data"
  BASE_PORT="${TEMPEST_PORT_BASE:-20400}"
  mkdir -p "$DATA_DIR"
  NOVUM_DATA_DIR="$DATA_DIR" NOVUM_BIND_ADDRESS=127.0.0.1 NOVUM_PUBLIC_HOST=127.0.0.1 NOVUM_LOG_LEVEL=warn \
    NOVUM_IDENTITY_PORT="$BASE_PORT" NOVUM_COMPUTE_PORT="$((BASE_PORT + 1))" \
    NOVUM_IMAGE_PORT="$((BASE_PORT + 2))" NOVUM_NETWORK_PORT="$((BASE_PORT + 3))" \
    NOVUM_ORCHESTRATION_PORT="$((BASE_PORT + 4))" NOVUM_SERIALPROXY_PORT="$((BASE_PORT + 5))" \
    node "${NOVUM_DIST:-$ROOT/dist}/apps/novum/main.js" >"$WORK/novum.log" 2>&1 &
  CLOUD_PID=$!
  for _ in $(seq 1 600); do
    [[ -f "$DATA_DIR/ready.json" ]] && break
    kill -0 "$CLOUD_PID" 2>/dev/null || { cat "$WORK/novum.log"; echo "the cloud did not start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -f "$DATA_DIR/ready.json" ]] || { echo "the cloud did not become ready" >&2; exit 1; }
fi

IDENTITY_URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"]["identity"])' "$DATA_DIR/ready.json")"
BASE="${IDENTITY_URL%/identity}"
PASSWORDS="$DATA_DIR/bootstrap-passwords.json"
ADMIN_PASSWORD="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS")"
DEMO_PASSWORD="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["demo"])' "$PASSWORDS")"

# The image servers boot from: the cloud's first one, or a small raw disk uploaded here (the fake driver
# boots anything; a real driver needs ops/images). Then the public network, when the cloud has one.
export OS_CLIENT_CONFIG_FILE="$DATA_DIR/clouds.yaml" OS_CLOUD=novum-admin
IMAGE_ID="$(/usr/bin/openstack image list -f value -c ID 2>/dev/null | head -1 || true)"
if [[ -z "$IMAGE_ID" ]]; then
  head -c 1048576 /dev/zero >"$WORK/tempest-image.raw"
  IMAGE_ID="$(/usr/bin/openstack image create --public --disk-format raw --container-format bare \
    --file "$WORK/tempest-image.raw" tempest-image -f value -c id)"
fi
PUBLIC_NET_ID="$(/usr/bin/openstack network list --external -f value -c ID 2>/dev/null | head -1 || true)"
PUBLIC_NET_ID="${PUBLIC_NET_ID:-00000000-0000-4000-8000-000000000002}"

# Tests that pick hosts by hypervisor type look for what this cloud's hosts really run (fake until the
# kvm and container drivers land), not the template's QEMU.
HYPERVISOR_TYPE="$(/usr/bin/openstack hypervisor list --long -f value -c 'Hypervisor Type' 2>/dev/null | head -1 || true)"
HYPERVISOR_TYPE="${HYPERVISOR_TYPE:-QEMU}"

render() {
  sed -e "s|^hypervisor_type = .*|hypervisor_type = $HYPERVISOR_TYPE|" -e "s|@@BASE@@|$BASE|g" -e "s|@@IMAGE_ID@@|$IMAGE_ID|g" -e "s|@@IMAGE_ALT_ID@@|$IMAGE_ID|g" \
    -e "s|@@PUBLIC_NET_ID@@|$PUBLIC_NET_ID|g" -e "s|@@ADMIN_PASSWORD@@|$ADMIN_PASSWORD|g" \
    -e "s|@@DEMO_PASSWORD@@|$DEMO_PASSWORD|g" "$1"
}

cd "$WORK"
/usr/bin/tempest init --workspace-path "$WORK/workspace.yaml" --name "novum-${WORK##*.}" ws >/dev/null
render "$TEMPLATES/tempest.conf.template" >ws/etc/tempest.conf
render "$TEMPLATES/accounts.yaml.template" >ws/etc/accounts.yaml
cd ws
set +e
if [[ -n "${TEMPEST_INCLUDE_LIST:-}" ]]; then
  /usr/bin/tempest run --include-list "$TEMPEST_INCLUDE_LIST" --concurrency 1 >"$WORK/tempest.out" 2>&1
else
  /usr/bin/tempest run --regex "$REGEX" ${TEMPEST_EXCLUDE:+--exclude-regex "$TEMPEST_EXCLUDE"} --concurrency 1 \
    >"$WORK/tempest.out" 2>&1
fi
set -e

set +e
python3 - "$WORK/tempest.out" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
counts = {k: int(v) for k, v in re.findall(r"^ - (Passed|Failed|Skipped): (\d+)", text, re.M)}
failures = sorted(set(re.findall(r"^\{\d+\} (\S+) \[[^\]]*\] \.\.\. FAILED", text, re.M)))
print(f"tempest: {counts.get('Passed', 0)} passed/{counts.get('Failed', 0)} failed/{counts.get('Skipped', 0)} skipped")
for name in failures:
    print(f"FAILED {name}")
sys.exit(0 if counts.get("Passed", 0) > 0 and counts.get("Failed", 0) == 0 and not failures else 1)
PY
STATUS=$?
[[ "$STATUS" == 0 ]] || echo "full output: $WORK/tempest.out (workspace $WORK/ws)"
exit $STATUS
