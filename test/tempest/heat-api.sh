#!/usr/bin/env bash
# Runs heat-tempest-plugin's API tests (gabbi: stacks, resources, resource types, environments, software
# configs, templates) against a Novum cloud and prints "tempest: N passed/N failed/N skipped" and the failures.
#
#   test/tempest/heat-api.sh            start a cloud from $NOVUM_DIST (default dist/) and test it
#   NOVUM_DATA_DIR=/var/lib/novum test/tempest/heat-api.sh   test the running cloud of that data dir
#
# It is run.sh with the plugin's regex: the `[heat_plugin]` section of ../shared/tempest/tempest.conf.template
# configures the tests. TEMPEST_PORT_BASE (default 20500) sets the ports of a cloud this script starts.
set -euo pipefail

export TEMPEST_PORT_BASE="${TEMPEST_PORT_BASE:-20500}"
exec bash "$(dirname "$0")/run.sh" '^heat_tempest_plugin\.tests\.api\.'
