#!/usr/bin/env bash
# scripts/kafka.sh - a real single-node Apache Kafka (KRaft, broker+controller) on loopback,
# without Docker. The broker jars are resolved from Maven Central with Maven and run with java.
#
# Usage: scripts/kafka.sh <command>
#   up      start the broker if it is not already answering (idempotent), wait until ready
#   down    stop the broker this script started (SIGTERM, then SIGKILL after 30 s)
#   status  print "running ..." (exit 0) or "stopped" (exit 1)
#   fetch   only resolve the broker jars into $KAFKA_HOME_DIR/lib
#   reset   down, then delete the data directory
#
# Environment:
#   KAFKA_HOME_DIR          state directory (default: <repo>/.kafka): pom.xml, lib/,
#                           server.properties, log4j.properties, admin.properties, data/,
#                           broker.log, broker.pid
#   KAFKA_PORT              client listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT   KRaft controller port on 127.0.0.1 (default 9093)
#   KAFKA_UP_TIMEOUT        seconds `up` waits for readiness (default 90)
#   KAFKA_HEAP_MB           the broker's maximum heap (default 2048)
#   JAVA_HOME / mvn on PATH OpenJDK 17 and Maven 3.8+
#
# Other Kafka CLI tools are on the same classpath, e.g.:
#   java -cp '.kafka/lib/*' -Dlog4j.configuration=file:.kafka/log4j.properties \
#     org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
readonly SCALA_BINARY=2.13
readonly SLF4J_VERSION=1.7.36
readonly DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
readonly HOST=127.0.0.1

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(dirname -- "$SCRIPT_DIR")
HOME_DIR=${KAFKA_HOME_DIR:-$REPO_DIR/.kafka}
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
UP_TIMEOUT=${KAFKA_UP_TIMEOUT:-90}

if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
  JAVA="${JAVA_HOME}/bin/java"
else
  JAVA=java
fi

say() { printf 'kafka.sh: %s\n' "$*"; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

for _v in PORT CONTROLLER_PORT UP_TIMEOUT; do
  [[ "${!_v}" =~ ^[0-9]+$ ]] || die "$_v must be a number, got '${!_v}'"
done
[[ "$PORT" != "$CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# Resolve HOME_DIR to an absolute path (creating it), then derive the state paths.
init_home() {
  mkdir -p -- "$HOME_DIR"
  HOME_DIR=$(cd -- "$HOME_DIR" && pwd -P)
  set_paths
}
set_paths() {
  POM="$HOME_DIR/pom.xml"
  LIB="$HOME_DIR/lib"
  DATA="$HOME_DIR/data"
  SERVER_PROPS="$HOME_DIR/server.properties"
  LOG4J_PROPS="$HOME_DIR/log4j.properties"
  ADMIN_PROPS="$HOME_DIR/admin.properties"
  BROKER_LOG="$HOME_DIR/broker.log"
  PID_FILE="$HOME_DIR/broker.pid"
  LIB_STAMP="$LIB/.complete"
}
set_paths

# Serialise up/down/fetch/reset between concurrent invocations (fd 9; never inherited by the broker).
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>>"$HOME_DIR/.lock"
  flock -w $((UP_TIMEOUT + 300)) 9 || die "timed out waiting for another kafka.sh in $HOME_DIR"
}

need_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need OpenJDK 17; set JAVA_HOME or PATH)"
}

# java with the broker classpath and the quiet log4j config; never reads stdin.
kjava() {
  "$JAVA" -Dlog4j.configuration="file:$LOG4J_PROPS" -cp "$LIB/*" "$@" </dev/null
}

# --- probes -----------------------------------------------------------------------------------

port_open() { # port
  # shellcheck disable=SC2016 # $0/$1 expand in the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" >/dev/null 2>&1
}

# Speak the Kafka protocol: ApiVersions v0 request (correlation id "KSH1", client id "kafka.sh");
# a Kafka broker answers with <int32 size> 4b 53 48 31 <int16 error_code=0> ...
kafka_probe() { # port
  local out
  # shellcheck disable=SC2016 # $0/$1 expand in the inner shell
  out=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x00\x00\x00\x12\x00\x12\x00\x00\x4b\x53\x48\x31\x00\x08kafka.sh" >&3
    head -c 10 <&3 | od -An -tx1' "$HOST" "$1" 2>/dev/null) || return 1
  out=$(printf '%s' "$out" | tr -s ' \n' '  ')
  [[ "$out" =~ ^\ ?([0-9a-f]{2}\ ){4}4b\ 53\ 48\ 31\ 00\ 00\ ?$ ]]
}

# Real metadata round trip through the Admin client: list topics.
metadata_check() { # port
  [[ -f "$LIB_STAMP" && -f "$ADMIN_PROPS" && -f "$LOG4J_PROPS" ]] || return 1
  timeout 30 "$JAVA" -Dlog4j.configuration="file:$LOG4J_PROPS" -cp "$LIB/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$1" \
    --command-config "$ADMIN_PROPS" --list </dev/null >/dev/null 2>&1
}

# Prints the pid of the broker this script started (for this HOME_DIR), if it is alive.
broker_pid() {
  local pid cmd
  [[ -f "$PID_FILE" ]] || return 1
  pid=$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$SERVER_PROPS"* ]] || return 1
  printf '%s\n' "$pid"
}

log_tail() {
  if [[ -f "$BROKER_LOG" ]]; then
    printf 'kafka.sh: ---- last lines of %s ----\n' "$BROKER_LOG" >&2
    tail -n 40 "$BROKER_LOG" >&2 || true
    printf 'kafka.sh: ----\n' >&2
  fi
}

# --- generated files --------------------------------------------------------------------------

write_pom() {
  cat >"$POM" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh: only used to resolve the broker jars into lib/. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka-sh</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- the broker (kafka.Kafka, kafka.tools.StorageTool) with its runtime dependencies -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_BINARY}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <!-- CLI tools (org.apache.kafka.tools.TopicCommand, ...); Connect runtime not needed -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>${KAFKA_VERSION}</version>
      <exclusions>
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <!-- logging binding (the broker logs through slf4j 1.7 / log4j 1.x API) -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
}

write_config() {
  cat >"$SERVER_PROPS" <<EOF
# Generated by scripts/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=24
EOF
  cat >"$LOG4J_PROPS" <<'EOF'
# Generated by scripts/kafka.sh.
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
  # Admin client settings for the readiness check: fail fast instead of the 60 s default.
  cat >"$ADMIN_PROPS" <<'EOF'
# Generated by scripts/kafka.sh (admin client used by the readiness check).
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF
}

# --- actions ----------------------------------------------------------------------------------

do_fetch() {
  if [[ -f "$LIB_STAMP" && "$(cat "$LIB_STAMP")" == "$KAFKA_VERSION" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (need Maven 3.8+)"
  say "resolving Kafka ${KAFKA_VERSION} jars from Maven Central into $LIB ..."
  write_pom
  local tmp="$HOME_DIR/lib.tmp" mvn_log="$HOME_DIR/mvn.log" start=$SECONDS
  rm -rf -- "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$mvn_log" 2>&1; then
    printf 'kafka.sh: error: Maven failed to resolve the Kafka jars; its output:\n' >&2
    cat "$mvn_log" >&2
    rm -rf -- "$tmp"
    exit 1
  fi
  local jar
  for jar in "kafka_${SCALA_BINARY}-${KAFKA_VERSION}.jar" "kafka-tools-${KAFKA_VERSION}.jar" \
             "kafka-clients-${KAFKA_VERSION}.jar" "slf4j-reload4j-${SLF4J_VERSION}.jar"; do
    if [[ ! -f "$tmp/$jar" ]]; then
      cat "$mvn_log" >&2
      rm -rf -- "$tmp"
      die "Maven finished but $jar is missing"
    fi
  done
  rm -rf -- "$LIB"
  mv -- "$tmp" "$LIB"
  printf '%s\n' "$KAFKA_VERSION" >"$LIB_STAMP"
  rm -f -- "$mvn_log"
  say "jars ready: $(find "$LIB" -name '*.jar' | wc -l | tr -d ' ') jars in $((SECONDS - start)) s"
}

do_format() {
  [[ -f "$DATA/meta.properties" ]] && return 0
  local id out
  id=$(kjava kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1) || true
  [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid returned '$id'"
  say "formatting storage in $DATA (cluster id $id)"
  mkdir -p -- "$DATA"
  if ! out=$(kjava kafka.tools.StorageTool format -t "$id" -c "$SERVER_PROPS" --ignore-formatted 2>&1); then
    printf '%s\n' "$out" >&2
    die "StorageTool format failed"
  fi
}

do_start() {
  # keep the log from growing without bound across restarts
  if [[ -f "$BROKER_LOG" ]] && (( $(wc -c <"$BROKER_LOG") > 10485760 )); then
    mv -f -- "$BROKER_LOG" "$BROKER_LOG.1"
  fi
  printf '==== kafka.sh: starting Kafka %s at %s ====\n' "$KAFKA_VERSION" "$(date -u +%FT%TZ)" >>"$BROKER_LOG"
  rm -f -- "$PID_FILE"
  say "starting broker on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT), log: $BROKER_LOG"
  # New session (setsid) and immune to SIGHUP (nohup); the inner shell records its own pid, then
  # execs java so the pid is the JVM's. stdin/stdout/stderr and the lock fd are detached.
  # The heap holds the metadata of every partition: a test run leaves thousands (each test's
  # prefix creates every topic of topics/), and 512 MB ran out at about 18,000 (KAFKA_HEAP_MB).
  # shellcheck disable=SC2016 # $$/$0/$@ expand in the inner shell
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    "$JAVA" -Xms256m -Xmx"${KAFKA_HEAP_MB:-2048}"m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$LOG4J_PROPS" -cp "$LIB/*" \
    kafka.Kafka "$SERVER_PROPS" </dev/null >>"$BROKER_LOG" 2>&1 9>&- &
  local _
  for _ in $(seq 1 50); do
    broker_pid >/dev/null && return 0
    sleep 0.1
  done
  log_tail
  die "broker process did not start (no live pid in $PID_FILE)"
}

wait_ready() { # started_at(SECONDS)
  local started=$1 deadline=$(($1 + UP_TIMEOUT)) pid=""
  while (( SECONDS < deadline )); do
    if ! pid=$(broker_pid); then
      log_tail
      rm -f -- "$PID_FILE"
      die "broker exited during startup"
    fi
    if kafka_probe "$PORT" && metadata_check "$PORT"; then
      say "broker ready on $HOST:$PORT (pid $pid) after $((SECONDS - started)) s"
      return 0
    fi
    sleep 1
  done
  log_tail
  if pid=$(broker_pid); then
    say "broker not ready after ${UP_TIMEOUT} s; stopping it (pid $pid)"
    stop_pid "$pid" || true
  fi
  die "broker did not become ready within ${UP_TIMEOUT} s"
}

stop_pid() { # pid
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f -- "$PID_FILE"; return 0; }
    sleep 0.5
  done
  say "broker (pid $pid) still alive after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  rm -f -- "$PID_FILE"
}

# --- commands ---------------------------------------------------------------------------------

cmd_up() {
  init_home
  take_lock
  need_java
  local start=$SECONDS pid
  if pid=$(broker_pid); then
    if kafka_probe "$PORT" && metadata_check "$PORT"; then
      say "broker already running on $HOST:$PORT (pid $pid)"
      return 0
    fi
    say "broker process $pid exists but is not ready yet; waiting"
    wait_ready "$start"
    return 0
  fi
  if port_open "$PORT"; then
    if kafka_probe "$PORT"; then
      say "a Kafka broker already answers on $HOST:$PORT (not started by this script); using it"
      return 0
    fi
    die "$HOST:$PORT is in use by something that is not a Kafka broker"
  fi
  if port_open "$CONTROLLER_PORT"; then
    die "controller port $HOST:$CONTROLLER_PORT is already in use"
  fi
  rm -f -- "$PID_FILE"
  do_fetch
  write_config
  do_format
  do_start
  wait_ready "$start"
}

cmd_down() {
  init_home
  take_lock
  local pid
  if pid=$(broker_pid); then
    say "stopping broker (pid $pid)"
    stop_pid "$pid"
    say "stopped"
  else
    rm -f -- "$PID_FILE"
    if kafka_probe "$PORT"; then
      say "no broker started by kafka.sh is running (a Kafka broker not started by it answers on $HOST:$PORT; left alone)"
    else
      say "not running"
    fi
  fi
}

cmd_status() {
  if [[ -d "$HOME_DIR" ]]; then
    HOME_DIR=$(cd -- "$HOME_DIR" && pwd -P)
    set_paths
  fi
  local pid
  if pid=$(broker_pid); then
    if kafka_probe "$PORT"; then
      echo "running (pid $pid, $HOST:$PORT)"
    else
      echo "running (pid $pid, not answering on $HOST:$PORT yet)"
    fi
    return 0
  fi
  if kafka_probe "$PORT"; then
    echo "running (a Kafka broker not started by kafka.sh answers on $HOST:$PORT)"
    return 0
  fi
  echo "stopped"
  return 1
}

cmd_fetch() {
  init_home
  take_lock
  do_fetch
  say "jars present in $LIB (Kafka $KAFKA_VERSION)"
}

cmd_reset() {
  cmd_down
  if [[ -d "$DATA" ]]; then
    rm -rf -- "$DATA"
    say "deleted $DATA"
  fi
}

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  fetch) cmd_fetch ;;
  reset) cmd_reset ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
