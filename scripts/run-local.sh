#!/usr/bin/env bash
# Runs the demo services in the background and, once all of them serve, the orchestrator in the
# foreground, with the given transport. Ctrl-C or SIGTERM stops them all.
# Addresses: OCH_ORDER_ADDR (127.0.0.1:10001), OCH_PAYMENT_ADDR (127.0.0.1:10002) for booking,
# OCH_FACTORY_ADDR (127.0.0.1:10003) for hammer, OCH_ACCOUNTS_ADDR (127.0.0.1:10004) and
# OCH_GATEWAY_ADDR (127.0.0.1:10005) for transfer, OCH_WAREHOUSE_ADDR (127.0.0.1:10007) for
# delivery, OCH_DRIVERS_ADDR (127.0.0.1:10008) for bargain, and the orchestrator's ports OCH_GRPC_PORT
# (app.yaml: 10000) and OCH_HTTP_PORT (app.yaml: 10090, the web console: its log line "HTTP server
# listening" gives the address to open). DEMO_GATEWAY_UNAVAILABLE_FIRST=N makes the gateway refuse
# the first N calls of each idempotency key with UNAVAILABLE.
set -euo pipefail
cd "$(dirname "$0")/.."
# memory: in-process transport and saga store. kafka: the local broker and the Postgres on 127.0.0.1:5432.
driver=${1:-memory}
store=memory
[ "$driver" = kafka ] && store=postgres
order_addr=${OCH_ORDER_ADDR:-127.0.0.1:10001}
payment_addr=${OCH_PAYMENT_ADDR:-127.0.0.1:10002}
factory_addr=${OCH_FACTORY_ADDR:-127.0.0.1:10003}
accounts_addr=${OCH_ACCOUNTS_ADDR:-127.0.0.1:10004}
gateway_addr=${OCH_GATEWAY_ADDR:-127.0.0.1:10005}
warehouse_addr=${OCH_WAREHOUSE_ADDR:-127.0.0.1:10007}
drivers_addr=${OCH_DRIVERS_ADDR:-127.0.0.1:10008}
addresses=("$order_addr" "$payment_addr" "$factory_addr" "$accounts_addr" "$gateway_addr" "$warehouse_addr" "$drivers_addr")
# On Kafka the factory's head worker consumes the hammer's head commands from the broker (the
# orchestrator's brokers and topic prefix); in memory the orchestrator runs it in-process.
factory_env=()
if [ "$driver" = kafka ]; then
  factory_env=("DEMO_KAFKA_BROKERS=${OCH_KAFKA_BROKERS:-127.0.0.1:9092}" "DEMO_TOPIC_PREFIX=${OCH_TOPIC_PREFIX:-}")
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

node dist/src/examples/booking/services/main.js order "$order_addr" & pids+=($!)
node dist/src/examples/booking/services/main.js payment "$payment_addr" & pids+=($!)
env "${factory_env[@]}" node dist/src/examples/hammer/services/main.js factory "$factory_addr" & pids+=($!)
node dist/src/examples/transfer/services/main.js accounts "$accounts_addr" & pids+=($!)
node dist/src/examples/transfer/services/main.js gateway "$gateway_addr" & pids+=($!)
node dist/src/examples/delivery/services/main.js warehouse "$warehouse_addr" & pids+=($!)
node dist/src/examples/bargain/services/main.js drivers "$drivers_addr" & pids+=($!)
# The orchestrator starts only once all of them answer SERVING: a call sent the moment it reports
# listening must find its upstreams up.
for attempt in $(seq 30); do
  node dist/src/grpc/wait-serving.js --timeout 1000 "${addresses[@]}" 2>/dev/null && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "run-local.sh: a demo service exited before serving" >&2; exit 1; }
  done
  [ "$attempt" = 30 ] && { echo "run-local.sh: demo services not serving on ${addresses[*]}" >&2; exit 1; }
done
OCH_PATH=${OCH_PATH:-$PWD} OCH_TRANSPORT=$driver OCH_STORE=$store OCH_ORDER_ADDR=$order_addr OCH_PAYMENT_ADDR=$payment_addr \
  OCH_FACTORY_ADDR=$factory_addr OCH_ACCOUNTS_ADDR=$accounts_addr OCH_GATEWAY_ADDR=$gateway_addr OCH_WAREHOUSE_ADDR=$warehouse_addr OCH_DRIVERS_ADDR=$drivers_addr \
  node dist/src/main.js & orchestrator=$!
pids+=("$orchestrator")
wait "$orchestrator"
