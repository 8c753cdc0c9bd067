#!/usr/bin/env bash
# Runs the demo order (10001) and payment (10002) services in the background and the orchestrator
# (10000) in the foreground, with the given transport. Ctrl-C or SIGTERM stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
# memory: in-process transport and saga store. kafka: the local broker and the Postgres on 127.0.0.1:5432.
driver=${1:-memory}
store=memory
[ "$driver" = kafka ] && store=postgres

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

node dist/src/examples/booking/services/main.js order 127.0.0.1:10001 & pids+=($!)
node dist/src/examples/booking/services/main.js payment 127.0.0.1:10002 & pids+=($!)
OCH_PATH=${OCH_PATH:-$PWD} OCH_TRANSPORT=$driver OCH_STORE=$store node dist/src/main.js & pids+=($!)
wait "${pids[2]}"
