#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite (as root on Debian 12):
# lint and type checks, unit tests, then the end-to-end tests twice: embedded (SQLite + in-process bus)
# and production mode (PostgreSQL + RabbitMQ on 127.0.0.1, installed and started here if not running).
set -uo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m== %s\033[0m\n' "$*"; }

bash ops/install.sh --no-start || exit 1
bash ops/services.sh || exit 1
# The Horizon test's dashboard (Debian's, configured for Novum; each test serves it on its own port) and browser.
bash ops/horizon/install.sh --no-start || exit 1
command -v /usr/bin/chromium >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || exit 1; }

NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
export npm_config_nodedir="$NODE_PREFIX"
# Host tests (container driver as root with runc) must run here, not skip: install.sh provided their tools.
export NOVUM_REQUIRE_HOST_TESTS=1
results=$(mktemp -d)
status=0

log "lint and type check"
npx --no-install eslint "{apps,libs,test}/**/*.ts" || status=1
npx --no-install prettier --check --log-level warn "{apps,libs,test}/**/*.ts" || status=1
npx --no-install tsc -p tsconfig.json --noEmit || status=1

log "unit tests"
npx --no-install jest --selectProjects unit --json --outputFile="$results/unit.json" || status=1

# The host driver tests (real containers and QEMU guests: test/e2e/{container,kvm}-*, and horizon, which launches
# containers) run once, on the embedded default; what they test is below the bus and the database, which the
# second run is about. So do the real-client tests (test/e2e/*-cli: the openstack CLI's contract with the API, each
# command forked from a Python process that imported the client once, test/e2e/support/openstack-runner.py;
# horizon: the dashboard in a browser): the API, fuzz, bus and control-plane tests carry the PostgreSQL + RabbitMQ run.
# Two jest runs at once, one per core, each one file at a time: the host tests beside the other embedded tests
# (so no two host tests ever share the host: they check that nothing of Novum's is left on it), then the
# production run in the place of whichever ends first. Every test has its own ports, data dir, database and vhost.
HOST_TESTS='test/e2e/((container|kvm)-|horizon\.e2e|multihost\.e2e)'
ONCE_ONLY_TESTS='test/e2e/((container|kvm)-|[a-z-]+-cli\.e2e|horizon\.e2e|multihost\.e2e)'
# The fuzzing tests (random bodies, paths and templates at every API, looking for a 5xx) run in the production
# pass only: PostgreSQL is the stricter of the two databases (lengths, types, encodings), where a request that
# slips past validation fails first.
PRODUCTION_ONLY_TESTS='test/e2e/[a-z-]+-fuzz\.e2e'
e2e() { # NAME MODE JEST-ARGS...: one jest run of the e2e project, its report in $results/NAME.json
  local name=$1 mode=$2
  shift 2
  # --forceExit: a test that leaks a handle fails by itself; it must not also hang the whole suite.
  NOVUM_TEST_MODE=$mode npx --no-install jest --selectProjects e2e --runInBand --forceExit "$@" --json --outputFile="$results/$name.json"
}
streams=$(mktemp -d)
log "end-to-end tests, embedded mode: the host drivers' tests beside the others (output as each run ends)"
e2e e2e-host embedded "$HOST_TESTS" >"$streams/host" 2>&1 &
host_run=$!
e2e e2e-embedded embedded --testPathIgnorePatterns "$HOST_TESTS" "$PRODUCTION_ONLY_TESTS" >"$streams/embedded" 2>&1 &
other_run=$!
declare -A stream_of=([$host_run]=host [$other_run]=embedded)
wait -n -p ended $host_run $other_run || status=1
log "end-to-end tests, embedded mode: the ${stream_of[$ended]} run"
cat "$streams/${stream_of[$ended]}"
log "end-to-end tests, production mode"
e2e e2e-production production --testPathIgnorePatterns "$ONCE_ONLY_TESTS" || status=1
remaining=$([ "$ended" = "$host_run" ] && echo $other_run || echo $host_run)
wait $remaining || status=1
log "end-to-end tests, embedded mode: the ${stream_of[$remaining]} run"
cat "$streams/${stream_of[$remaining]}"
rm -rf "$streams"

log "Tempest: compute tier 1 (versions, flavors, keypairs, limits, servers, server groups, AZs)"
command -v /usr/bin/tempest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tempest >/dev/null; }
bash test/tempest/run.sh | tee "$results/tempest.txt" || status=1

log "Tempest: heat-tempest-plugin API tests (gabbi: stacks, resources, resource types, software configs, templates)"
python3 -c 'import heat_tempest_plugin' 2>/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends heat-tempest-plugin >/dev/null; }
bash test/tempest/heat-api.sh | tee "$results/tempest-heat.txt" || status=1

# One closing line for the whole run, counted from jest's own reports and Tempest's.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  const slowest = [];
  for (const f of fs.readdirSync(process.argv[1])) {
    if (/^tempest.*\.txt$/.test(f)) {
      const m = fs.readFileSync(process.argv[1] + "/" + f, "utf8").match(/tempest: (\d+) passed\/(\d+) failed\/(\d+) skipped/);
      if (m) { passed += +m[1]; failed += +m[2]; skipped += +m[3]; } else failed += 1;
      continue;
    }
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
    skipped += r.numPendingTests + r.numTodoTests;
    for (const t of r.testResults || [])
      slowest.push([(t.endTime - t.startTime) / 1000, f.replace(/\.json$/, ""), require("path").relative(process.cwd(), t.name)]);
  }
  // Where the time goes, for whoever keeps the suite short.
  slowest.sort((a, b) => b[0] - a[0]);
  for (const [s, run, file] of slowest.slice(0, 12)) console.log(`${s.toFixed(0).padStart(5)} s  ${run.padEnd(16)} ${file}`);
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$results"
rm -rf "$results"
exit $status
