#!/usr/bin/env bash
# The whole suite: lint, type-check, build, then mocha (unit, integration against the real Kafka
# broker, end-to-end over gRPC). Starts the broker if none is running and stops what it started.
# Writes the totals to .test-results/summary.txt as "N passed, N failed, N skipped" (lint and
# type-check count as one check each; mocha's pending tests count as skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .test-results
summary=.test-results/summary.txt
rm -f "$summary" .test-results/mocha.json
passed=0
failed=0
skipped=0
check() {
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name"; failed=$((failed + 1)); fi
}
finish() {
  echo "$passed passed, $failed failed, $skipped skipped" > "$summary"
  cat "$summary"
}

check lint npx eslint .
check typecheck npx tsc -p tsconfig.json --noEmit
rm -rf dist
if ! npx tsc -p tsconfig.json; then
  failed=$((failed + 1)); finish; exit 1
fi

# Postgres: the machine's own on 127.0.0.1:5432 (tests create and drop their own databases).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "Postgres is not answering on 127.0.0.1:5432: trying to start the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || echo "FAILED: could not start Postgres"
fi

# The console's browser test drives Debian's chromium: installed here when missing.
scripts/browser.sh || echo "FAILED: could not install chromium (scripts/browser.sh): the console's browser test will fail"

started_kafka=0
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  if scripts/kafka.sh up; then started_kafka=1; else echo "FAILED: could not start Kafka"; fi
fi
trap '[ "$started_kafka" = 1 ] && scripts/kafka.sh down' EXIT

TEST_SUMMARY_FILE=.test-results/mocha.json npx mocha "$@"
if [ -f .test-results/mocha.json ]; then
  read -r p f s < <(node -e 'const s=require("./.test-results/mocha.json");console.log(s.passes, s.failures, s.pending)')
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
else
  echo "FAILED: mocha did not finish"; failed=$((failed + 1))
fi
finish
[ "$failed" -eq 0 ]
