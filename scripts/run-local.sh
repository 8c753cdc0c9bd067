#!/usr/bin/env bash
# Runs the demo order and payment services in the background and, once both serve, the
# orchestrator in the foreground, with the given transport. Ctrl-C or SIGTERM stops all three.
# Addresses: OCH_ORDER_ADDR (127.0.0.1:10001), OCH_PAYMENT_ADDR (127.0.0.1:10002) and the
# orchestrator's port OCH_GRPC_PORT (app.yaml: 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
# memory: in-process transport and saga store. kafka: the local broker and the Postgres on 127.0.0.1:5432.
driver=${1:-memory}
store=memory
[ "$driver" = kafka ] && store=postgres
order_addr=${OCH_ORDER_ADDR:-127.0.0.1:10001}
payment_addr=${OCH_PAYMENT_ADDR:-127.0.0.1:10002}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

node dist/src/examples/booking/services/main.js order "$order_addr" & pids+=($!)
node dist/src/examples/booking/services/main.js payment "$payment_addr" & pids+=($!)
# The orchestrator starts only once both answer SERVING: a call sent the moment it reports
# listening must find its upstreams up.
for attempt in $(seq 30); do
  node dist/src/grpc/wait-serving.js --timeout 1000 "$order_addr" "$payment_addr" 2>/dev/null && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "run-local.sh: a demo service exited before serving" >&2; exit 1; }
  done
  [ "$attempt" = 30 ] && { echo "run-local.sh: demo services not serving on $order_addr, $payment_addr" >&2; exit 1; }
done
OCH_PATH=${OCH_PATH:-$PWD} OCH_TRANSPORT=$driver OCH_STORE=$store OCH_ORDER_ADDR=$order_addr OCH_PAYMENT_ADDR=$payment_addr \
  node dist/src/main.js & pids+=($!)
wait "${pids[2]}"
