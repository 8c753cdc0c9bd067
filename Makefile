# Saga orchestrator: see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NPM_STAMP := node_modules/.installed

.PHONY: help install build run run-kafka test lint typecheck kafka-up kafka-down bench bench-park bench-purge bench-timers bench-trace bench-metrics clean

help:
	@echo "make run        orchestrator on 127.0.0.1:10000 (the web console, /metrics, probes: http://127.0.0.1:10090/), in-process transport, with the demo services (booking, hammer, transfer, delivery, bargain)"
	@echo "make run-kafka  the same against the local Kafka broker (started if not running)"
	@echo "make test       lint, type-check, unit + integration (real Kafka) + end-to-end tests"
	@echo "make kafka-up / kafka-down   the local single-node Kafka broker (scripts/kafka.sh)"

$(NPM_STAMP): package.json package-lock.json
	@# npm ci refuses this lock file (npm 11 records buf's other-platform binaries without versions); npm install honours it.
	npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error
	@touch $@

install: $(NPM_STAMP)

build: install
	npx tsc -p tsconfig.json

run: build
	scripts/run-local.sh memory

run-kafka: build kafka-up
	scripts/run-local.sh kafka

test: install
	scripts/test.sh

lint: install
	npx eslint .

typecheck: install
	npx tsc -p tsconfig.json --noEmit

# Load benchmark (Kafka + Postgres on 127.0.0.1:5432), e.g. make bench BENCH_ARGS="--duration 10 --facades sync".
bench: build kafka-up
	node dist/bench/run.js $(BENCH_ARGS)

# Park bench (issue 17): 2 instances, PARK_SAGAS parked (half on waits hours away, half on sleeps due over the
# following 10 minutes, + 10,000 due in one second), seeded by SQL from a few real ones; prints each figure beside
# its target: idle store writes, RSS, start-up, SendEvent, timers, kill -9, ListSagas, /metrics, dead tuples.
# PARK_ARGS: --no-<phase> to skip one, sizes (see node dist/bench/park.js --help). About 25 minutes at 1,000,000.
PARK_SAGAS ?= 1000000
bench-park: build kafka-up
	node dist/bench/park.js --sagas $(PARK_SAGAS) $(PARK_ARGS)

# Retention: sync booking throughput and ListSagas latency on an empty store, then with PURGE_SAGAS finished booking
# sagas (filled by SQL), during their purge and after it; and how long the purge takes. PURGE_ARGS: --duration S,
# --concurrency C, --list-every-ms MS, --chunk N (see bench/purge.ts).
PURGE_SAGAS ?= 1000000
bench-purge: build kafka-up
	node dist/bench/purge.js --sagas $(PURGE_SAGAS) $(PURGE_ARGS)

# Timer lateness: Transfer sagas whose webhook wait times out; how late each timer fires (p50/p99/max).
bench-timers: build kafka-up
	node dist/bench/timers.js $(TIMER_ARGS)

# What tracing costs one saga step, tracing off and on (no I/O: the engine's tracing calls alone).
bench-trace: build
	node dist/bench/trace-overhead.js

# CPU of the metrics hooks per saga and of a scrape (no stack needed); METRICS_ARGS="--profile <a .cpuprofile of make bench>".
bench-metrics: build
	node dist/bench/metrics-cost.js $(METRICS_ARGS)

kafka-up:
	scripts/kafka.sh up

kafka-down:
	scripts/kafka.sh down

clean:
	rm -rf dist .test-results
