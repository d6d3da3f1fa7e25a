#!/usr/bin/env bash
# Install, start, health-check and stop the real servers that the integration
# tests talk to: Kafka (KRaft), OpenSearch, ClickHouse and MinIO, all bound to
# 127.0.0.1 only. See deploy/local/README.md for the interface.
#
#   servers.sh install  [SERVER...]   fetch/build into the cache dir (idempotent)
#   servers.sh start    [SERVER...]   (re)start clean, wait for health, write env file
#   servers.sh stop     [SERVER...]   TERM, then KILL after a bounded wait
#   servers.sh restart  [SERVER...]   stop, then start
#   servers.sh status   [SERVER...]   pid + health of each server
#   servers.sh versions [SERVER...]   installed and running versions
#   servers.sh env                    print the env file of the running servers
#   servers.sh kafka-run CLASS ARGS   run a class from the Kafka classpath (CLI tools)
#
# SERVER is any of: kafka opensearch clickhouse minio (default: all).
set -euo pipefail
umask 022

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ERASURE_LOCAL_CACHE:-/var/cache/erasure-local}
STATE=${ERASURE_LOCAL_STATE:-/tmp/erasure-local}
CACHE=${CACHE%/}
STATE=${STATE%/}
RUN=$STATE/run

# Pinned versions (override for experiments only).
KAFKA_VERSION=${ERASURE_LOCAL_KAFKA_VERSION:-4.1.2}
LOG4J_VERSION=${ERASURE_LOCAL_LOG4J_VERSION:-2.24.3}
OPENSEARCH_VERSION=${ERASURE_LOCAL_OPENSEARCH_VERSION:-2.19.6}
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=${ERASURE_LOCAL_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

# Ports (all on 127.0.0.1).
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
OPENSEARCH_HTTP_PORT=19200
OPENSEARCH_TRANSPORT_PORT=19300
CLICKHOUSE_TCP_PORT=19000
CLICKHOUSE_HTTP_PORT=18123
MINIO_PORT=19100
MINIO_CONSOLE_PORT=19101

MINIO_ACCESS_KEY=erasure
MINIO_SECRET_KEY=erasure-secret
S3_REGION=us-east-1

OS_USER=erasure-os
# Fixed KRaft cluster id: storage is wiped and formatted on every start.
KAFKA_CLUSTER_ID=4L6g3nShT-eMCtK--X86sw

# Health timeouts in seconds.
KAFKA_TIMEOUT=${ERASURE_LOCAL_KAFKA_TIMEOUT:-120}
OPENSEARCH_TIMEOUT=${ERASURE_LOCAL_OPENSEARCH_TIMEOUT:-180}
CLICKHOUSE_TIMEOUT=${ERASURE_LOCAL_CLICKHOUSE_TIMEOUT:-60}
MINIO_TIMEOUT=${ERASURE_LOCAL_MINIO_TIMEOUT:-60}
STOP_TIMEOUT=${ERASURE_LOCAL_STOP_TIMEOUT:-30}

# Extra flags for the Kafka and OpenSearch JVMs. C1-only JIT roughly halves
# their start-up on 2 busy cores; peak throughput does not matter for tests.
JVM_EXTRA_OPTS=${ERASURE_LOCAL_JVM_OPTS--XX:TieredStopAtLevel=1}

ALL_SERVERS=(kafka opensearch clickhouse minio)

KAFKA_HOME=$CACHE/kafka-$KAFKA_VERSION
OPENSEARCH_HOME=$CACHE/opensearch-$OPENSEARCH_VERSION
MINIO_BIN=$CACHE/minio-$MINIO_VERSION/bin/minio
M2_REPO=$CACHE/m2

log() { printf '%s [servers] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '%s [servers] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

java_bin() {
  local j
  j=$(command -v java) || die "java not found on PATH (Java 17+ required)"
  readlink -f "$j"
}
java_home() { local j; j=$(java_bin); dirname "$(dirname "$j")"; }

# ---------------------------------------------------------------------------
# process management

pidfile() { echo "$RUN/$1.pid"; }

proc_starttime() { # pid -> start time in clock ticks (field 22 of /proc/pid/stat)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # drop "pid (comm) ": field 3 comes first now
  echo "$stat" | cut -d' ' -f20
}

# Prints the pid recorded for SERVER if that exact process (pid + start time)
# or its process group is still alive; fails otherwise.
running_pid() {
  local f pid start cur
  f=$(pidfile "$1")
  [[ -s $f ]] || return 1
  read -r pid start <"$f" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  if cur=$(proc_starttime "$pid"); then
    [[ $cur == "$start" ]] || return 1
    echo "$pid"
    return 0
  fi
  # Leader gone but members of its process group may linger.
  if kill -0 -- "-$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  return 1
}

# launch SERVER LOGFILE [ENV=VAL...] -- CMD ARGS...
# Starts CMD in a new session (so it survives this script and has no
# controlling terminal), stdin from /dev/null, stdout+stderr to LOGFILE, every
# other inherited file descriptor closed (so a caller's pipe or lock is never
# held open), and records "pid starttime" in the pid file before exec, so the
# pid is the server itself and a recycled pid is never mistaken for it.
launch() {
  local name=$1 logf=$2; shift 2
  local envs=()
  while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  local pf; pf=$(pidfile "$name")
  rm -f "$pf"
  setsid env "${envs[@]}" bash -c '
    pf=$1; shift
    for fd in /proc/$$/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    st=$(sed "s/.*) //" /proc/$$/stat | cut -d" " -f20)
    echo "$$ $st" >"$pf.tmp" && mv "$pf.tmp" "$pf"
    exec "$@"
  ' launcher "$pf" "$@" </dev/null >>"$logf" 2>&1 &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $pf ]] && return 0
    sleep 0.05
  done
  die "$name: launcher did not write $pf"
}

stop_server() {
  local name=$1 pid t0
  if ! pid=$(running_pid "$name"); then
    rm -f "$(pidfile "$name")"
    return 0
  fi
  t0=$(now)
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT)) graceful=1
  while kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name: still running after ${STOP_TIMEOUT}s, sending KILL to process group $pid"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      graceful=0
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$(pidfile "$name")"
  cds_commit "$name" "$graceful"
  log "$name: stopped (pid $pid) in $(elapsed "$t0")s"
}

# Class-data sharing for the Kafka broker: its first run dumps the classes it
# loaded into an archive when it stops (kept after a graceful stop only);
# later starts map that archive, which cuts broker start-up from ~10s to ~4s on
# this 2-core machine. A missing, stale or mismatched archive only costs speed:
# the JVM then runs without it (-Xshare:auto). ERASURE_LOCAL_CDS=0 disables it.
# (Not used for OpenSearch: its launcher re-runs the JVM options in a probe JVM
# that cannot dump an archive.)
cds_dir() { # per Kafka version and JVM build
  local jvm
  jvm=$(stat -c %Y-%s "$(java_home)/lib/server/libjvm.so" 2>/dev/null || echo unknown)
  echo "$CACHE/cds/$1-$KAFKA_VERSION-jvm$jvm"
}
cds_flag() { # name -> JVM flag
  [[ ${ERASURE_LOCAL_CDS:-1} == 1 ]] || return 0
  local dir; dir=$(cds_dir "$1")
  if [[ -s $dir/app.jsa ]]; then
    echo "-XX:SharedArchiveFile=$dir/app.jsa"
  else
    rm -f "$dir/app.jsa.new"
    echo "-XX:ArchiveClassesAtExit=$dir/app.jsa.new"
  fi
}
cds_commit() { # name graceful(0/1): keep a freshly dumped archive only after a clean exit
  [[ $1 == kafka ]] || return 0
  local dir; dir=$(cds_dir "$1")
  [[ -e $dir/app.jsa.new ]] || return 0
  if [[ $2 == 1 && -s $dir/app.jsa.new ]]; then
    mv -f "$dir/app.jsa.new" "$dir/app.jsa"
  else
    rm -f "$dir/app.jsa.new"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_ports() {
  local name=$1 p; shift
  for p in "$@"; do
    if port_busy "$p"; then
      echo "$name: port 127.0.0.1:$p is already in use by a process this script did not start:" >&2
      ss -ltnp "sport = :$p" >&2 || true
      return 1
    fi
  done
}

show_log() { # name file...
  local name=$1 f; shift
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "----- $name: last 50 lines of $f -----" >&2
    tail -n 50 "$f" >&2
    echo "----- end of $f -----" >&2
  done
}

# wait_for SERVER TIMEOUT CHECK_FUNC -> 0 when CHECK_FUNC succeeds, 1 on
# timeout or when the server process exits early.
wait_for() {
  local name=$1 timeout=$2 check=$3
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if $check >/dev/null 2>&1; then return 0; fi
    if ! running_pid "$name" >/dev/null; then
      echo "$name: process exited during startup" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "$name: not healthy after ${timeout}s" >&2
  return 1
}

# ---------------------------------------------------------------------------
# install

install_log() { mkdir -p "$CACHE/logs"; echo "$CACHE/logs/install-$1.log"; }

run_logged() { # name cmd... : run, on failure print the tail of its log
  local name=$1; shift
  local lf; lf=$(install_log "$name")
  if ! "$@" >>"$lf" 2>&1; then
    echo "$name: install step failed: $*" >&2
    tail -n 50 "$lf" >&2
    return 1
  fi
}

mvn_() { mvn -B -q -Dmaven.repo.local="$M2_REPO" "$@"; }

install_kafka() {
  [[ -f $KAFKA_HOME/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found"
  local tmp=$KAFKA_HOME.tmp
  rm -rf "$tmp"; mkdir -p "$tmp/libs"
  cat >"$tmp/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.erasure</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- CLI tools (topics, console producer/consumer, cluster tool) -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- logging backend: the broker only declares slf4j-api -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  log "kafka: resolving kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven"
  run_logged kafka mvn_ -f "$tmp/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs"
  [[ -f $tmp/libs/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after Maven resolution"
  cat >"$tmp/log4j2-tools.properties" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  touch "$tmp/.complete"
  rm -rf "$KAFKA_HOME"; mv "$tmp" "$KAFKA_HOME"
  log "kafka: installed $(ls "$KAFKA_HOME/libs" | wc -l) jars into $KAFKA_HOME"
}

ensure_os_user() {
  if ! id -u "$OS_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER" 2>/dev/null ||
      id -u "$OS_USER" >/dev/null 2>&1 || die "cannot create system user $OS_USER"
    log "opensearch: created system user $OS_USER"
  fi
}

# The integ-test zip ships only the transport-netty4 module. These modules of
# the full distribution are added from their Maven Central jars so that the
# APIs a store is likely to use exist: _delete_by_query / _update_by_query /
# _reindex (reindex), scripts (lang-painless), the common analyzers, tokenizers
# and filters (analysis-common) and scaled_float / search_as_you_type /
# token_count / rank_feature (mapper-extras).
# name|artifactId|plugin class|extended plugins|description
OPENSEARCH_MODULES=(
  "lang-painless|lang-painless|org.opensearch.painless.PainlessPlugin||An easy, safe and fast scripting language for OpenSearch"
  "reindex|reindex-client|org.opensearch.index.reindex.ReindexPlugin||The Reindex module adds APIs to reindex from one index to another or update documents in place."
  "analysis-common|analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless|Adds \"built in\" analyzers to OpenSearch."
  "mapper-extras|mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin||Adds advanced field mappers"
)
# Bump when the installed layout changes, so an older cached install is redone.
OPENSEARCH_LAYOUT=2

opensearch_complete() { [[ $(cat "$OPENSEARCH_HOME/.complete" 2>/dev/null) == "$OPENSEARCH_LAYOUT" ]]; }

install_opensearch_modules() { # opensearch home being built, scratch dir
  local home=$1 work=$2 spec name artifact class extended desc jar base
  # One aggregator project, one child per module: a single Maven run resolves
  # every module's runtime jars into <child>/target/dependency.
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
    echo '<groupId>local.erasure</groupId><artifactId>opensearch-modules</artifactId><version>1</version><packaging>pom</packaging><modules>'
    for spec in "${OPENSEARCH_MODULES[@]}"; do echo "<module>${spec%%|*}</module>"; done
    echo '</modules></project>'
  } >"$work/pom.xml"
  for spec in "${OPENSEARCH_MODULES[@]}"; do
    IFS='|' read -r name artifact class extended desc <<<"$spec"
    mkdir -p "$work/$name"
    # The server core and its libraries are on the server's class path already.
    cat >"$work/$name/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.erasure</groupId>
  <artifactId>opensearch-module-$name</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.opensearch.plugin</groupId><artifactId>$artifact</artifactId><version>$OPENSEARCH_VERSION</version>
      <exclusions><exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
</project>
POM
  done
  run_logged opensearch mvn_ -f "$work/pom.xml" "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime
  for spec in "${OPENSEARCH_MODULES[@]}"; do
    IFS='|' read -r name artifact class extended desc <<<"$spec"
    local mdir=$home/modules/$name
    mkdir -p "$mdir"
    [[ -f $work/$name/target/dependency/$artifact-$OPENSEARCH_VERSION.jar ]] ||
      die "opensearch: $artifact-$OPENSEARCH_VERSION.jar missing after Maven resolution"
    # Keep only the jars the server's lib/ does not already have (a class on
    # both class paths is refused at start-up as jar hell).
    for jar in "$work/$name/target/dependency"/*.jar; do
      base=$(basename "$jar" .jar)
      base=${base%-[0-9]*}
      if compgen -G "$home/lib/$base-[0-9]*.jar" >/dev/null; then continue; fi
      cp "$jar" "$mdir/"
    done
    cat >"$mdir/plugin-descriptor.properties" <<DESC
description=$desc
version=$OPENSEARCH_VERSION
name=$name
classname=$class
java.version=11
opensearch.version=$OPENSEARCH_VERSION
custom.foldername=
extended.plugins=$extended
has.native.controller=false
DESC
    if [[ $name == lang-painless ]]; then
      cat >"$mdir/plugin-security.policy" <<'POLICY'
grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";
  // needed to find the classloader to load allowlisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
POLICY
    fi
  done
}

install_opensearch() {
  [[ $(id -u) == 0 ]] && ensure_os_user
  opensearch_complete && return 0
  command -v mvn >/dev/null || die "mvn not found"
  local tmp=$OPENSEARCH_HOME.tmp
  rm -rf "$tmp"; mkdir -p "$tmp/dl" "$tmp/x" "$tmp/modules"
  log "opensearch: fetching org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip with Maven"
  run_logged opensearch mvn_ "$DEP_PLUGIN:copy" \
    -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip" \
    -DoutputDirectory="$tmp/dl"
  run_logged opensearch unzip -q "$tmp/dl/opensearch-$OPENSEARCH_VERSION.zip" -d "$tmp/x"
  local top; top=$(find "$tmp/x" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [[ -x $top/bin/opensearch ]] || die "opensearch: bin/opensearch missing in the zip"
  log "opensearch: adding modules lang-painless reindex analysis-common mapper-extras from Maven Central"
  install_opensearch_modules "$top" "$tmp/modules"
  rm -rf "$OPENSEARCH_HOME"; mv "$top" "$OPENSEARCH_HOME"
  rm -rf "$tmp"
  chmod -R a+rX "$OPENSEARCH_HOME"
  echo "$OPENSEARCH_LAYOUT" >"$OPENSEARCH_HOME/.complete"
  log "opensearch: installed into $OPENSEARCH_HOME"
}

clickhouse_installed() {
  local s
  for s in clickhouse-server clickhouse-client; do
    [[ $(dpkg-query -W -f='${Status}' "$s" 2>/dev/null) == "install ok installed" ]] || return 1
  done
}

install_clickhouse() {
  clickhouse_installed && return 0
  [[ $(id -u) == 0 ]] || die "clickhouse: apt-get install needs root"
  log "clickhouse: installing clickhouse-server clickhouse-client from Debian"
  # The package's init script would start a system-wide server on the default
  # ports; keep invoke-rc.d from starting anything during this install.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; added_policy=1
  fi
  local rc=0
  (
    export DEBIAN_FRONTEND=noninteractive
    run_logged clickhouse apt-get -o DPkg::Lock::Timeout=600 update &&
      run_logged clickhouse apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
        clickhouse-server clickhouse-client
  ) || rc=$?
  ((added_policy)) && rm -f "$policy"
  ((rc == 0)) || die "clickhouse: apt-get install failed (see $(install_log clickhouse))"
  log "clickhouse: installed $(dpkg-query -W -f='${Version}' clickhouse-server)"
}

install_minio() {
  [[ -x $MINIO_BIN ]] && return 0
  command -v go >/dev/null || die "go not found"
  log "minio: building $MINIO_MODULE@$MINIO_VERSION with go install (takes a few minutes)"
  local gobin; gobin=$(dirname "$MINIO_BIN")
  mkdir -p "$gobin"
  # Run outside any module so the caller's go.mod is neither read nor touched.
  (cd "$CACHE" && run_logged minio env GOBIN="$gobin.tmp" GOFLAGS= GO111MODULE=on \
    go install "$MINIO_MODULE@$MINIO_VERSION") || die "minio: go install failed"
  mv -f "$gobin.tmp/minio" "$MINIO_BIN"; rmdir "$gobin.tmp" 2>/dev/null || true
  log "minio: installed $MINIO_BIN"
}

server_installed() {
  case $1 in
    kafka) [[ -f $KAFKA_HOME/.complete ]] ;;
    opensearch) opensearch_complete && id -u "$OS_USER" >/dev/null 2>&1 ;;
    clickhouse) clickhouse_installed ;;
    minio) [[ -x $MINIO_BIN ]] ;;
  esac
}

# Install the given servers in parallel (network-bound Maven/apt downloads
# overlap with the CPU-bound MinIO build).
do_install() {
  local t0 s rc=0; t0=$(now)
  mkdir -p "$CACHE"; chmod 755 "$CACHE"
  local -A pids=()
  for s in "$@"; do
    if server_installed "$s"; then continue; fi
    (
      exec 9>"$CACHE/.install-$s.lock"
      flock -w 1800 9 || die "$s: could not get the install lock"
      "install_$s"
    ) &
    pids[$s]=$!
  done
  for s in "${!pids[@]}"; do
    if ! wait "${pids[$s]}"; then echo "$s: install FAILED" >&2; rc=1; fi
  done
  ((rc == 0)) || die "install failed"
  if ((${#pids[@]})); then
    log "install of ${!pids[*]} took $(elapsed "$t0")s"
  fi
}

# ---------------------------------------------------------------------------
# start (one server, run in a background subshell)

kafka_java() { # extra args... (short-lived CLI JVMs: C1 only, serial GC)
  "$(java_bin)" -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2-tools.properties" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

start_kafka() {
  local d=$STATE/kafka
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$d/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.zk.name = org.apache.kafka.raft
logger.zk.level = INFO
EOF
  kafka_java kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$d/server.properties" \
    >"$d/logs/format.log" 2>&1 || { show_log kafka "$d/logs/format.log"; return 1; }
  mkdir -p "$(cds_dir kafka)"
  local cds; cds=$(cds_flag kafka)
  launch kafka "$d/logs/stdout.log" -- \
    "$(java_bin)" -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true ${cds:+"$cds" -Xlog:cds*=off} $JVM_EXTRA_OPTS \
    -Dkafka.logs.dir="$d/logs" -Dlog4j2.configurationFile="$d/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$d/server.properties"
}

kafka_started() { grep -q 'Kafka Server started' "$STATE/kafka/logs/server.log" && port_busy "$KAFKA_PORT"; }

# One real Kafka protocol round trip without starting a JVM: an ApiVersions v0
# request (api key 18, correlation id 1234) must come back with that
# correlation id and error code 0.
kafka_api_versions() {
  local out
  out=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x04\xd2\x00\x05probe" >&3
    head -c 10 <&3 | od -An -tx1
  ' probe "$KAFKA_PORT") || return 1
  # shellcheck disable=SC2086
  set -- $out
  [[ $# == 10 && "$5$6$7$8" == 000004d2 && "$9${10}" == 0000 ]]
}

check_kafka() {
  local d=$STATE/kafka
  if ! wait_for kafka "$KAFKA_TIMEOUT" kafka_started || ! kafka_api_versions; then
    show_log kafka "$d/logs/server.log" "$d/logs/stdout.log"; return 1
  fi
}

version_kafka_live() { grep -m1 -o 'Kafka version: [^ ]*' "$STATE/kafka/logs/server.log" | awk '{print $3}'; }

start_opensearch() {
  local d=$STATE/opensearch
  [[ $(id -u) == 0 ]] || die "opensearch: this script runs it as user $OS_USER and needs root"
  mkdir -p "$d/data" "$d/logs" "$d/tmp"
  cp -r "$OPENSEARCH_HOME/config" "$d/config"
  cat >"$d/config/opensearch.yml" <<EOF
cluster.name: erasure-local
node.name: erasure-local-1
path.data: $d/data
path.logs: $d/logs
network.host: 127.0.0.1
http.port: $OPENSEARCH_HTTP_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
discovery.type: single-node
action.auto_create_index: true
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  # bin/opensearch runs from OPENSEARCH_HOME (read-only here): make the
  # relative gc-log / heap-dump / error-file paths of jvm.options absolute.
  sed -i -e "s#file=logs/#file=$d/logs/#; s#-Xloggc:logs/#-Xloggc:$d/logs/#" \
    -e "s#HeapDumpPath=data#HeapDumpPath=$d/data#; s#ErrorFile=logs/#ErrorFile=$d/logs/#" \
    "$d/config/jvm.options"
  chown -R "$OS_USER:" "$d"
  # The unprivileged user must be able to read the install and the JDK.
  setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups test -r "$OPENSEARCH_HOME/lib" -a -x "$OPENSEARCH_HOME/bin/opensearch" ||
    die "opensearch: user $OS_USER cannot read $OPENSEARCH_HOME (cache dir must be world-readable)"
  cd "$d"
  launch opensearch "$d/logs/stdout.log" \
    HOME="$d" OPENSEARCH_HOME="$OPENSEARCH_HOME" OPENSEARCH_PATH_CONF="$d/config" \
    OPENSEARCH_JAVA_HOME="$(java_home)" JAVA_HOME="$(java_home)" OPENSEARCH_TMPDIR="$d/tmp" \
    OPENSEARCH_JAVA_OPTS="-Xms512m -Xmx512m $JVM_EXTRA_OPTS" -- \
    setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups "$OPENSEARCH_HOME/bin/opensearch"
  cd - >/dev/null
}

opensearch_healthy() {
  curl -fsS --max-time 3 "http://127.0.0.1:$OPENSEARCH_HTTP_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" |
    grep -Eq '"status":"(green|yellow)"'
}

check_opensearch() {
  local d=$STATE/opensearch
  if ! wait_for opensearch "$OPENSEARCH_TIMEOUT" opensearch_healthy; then
    show_log opensearch "$d/logs/erasure-local.log" "$d/logs/stdout.log"; return 1
  fi
  # One node: new indices get no replicas, so they turn green, not yellow.
  # (Set through the API: the same key in opensearch.yml is not applied to
  # index creation.)
  curl -fsS --max-time 10 -X PUT "http://127.0.0.1:$OPENSEARCH_HTTP_PORT/_cluster/settings" \
    -H 'Content-Type: application/json' -d '{"persistent":{"cluster.default_number_of_replicas":0}}' >/dev/null ||
    { echo "opensearch: could not set cluster.default_number_of_replicas" >&2; return 1; }
}

version_opensearch_live() {
  curl -fsS --max-time 3 "http://127.0.0.1:$OPENSEARCH_HTTP_PORT/" | tr -d ' \n' | grep -o '"number":"[^"]*"' | head -n 1 | cut -d'"' -f4
}

start_clickhouse() {
  local d=$STATE/clickhouse
  mkdir -p "$d/data/tmp" "$d/data/user_files" "$d/data/format_schemas" "$d/log"
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$d/log/clickhouse-server.log</log>
        <errorlog>$d/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <listen_try>0</listen_try>
    <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/data/tmp/</tmp_path>
    <user_files_path>$d/data/user_files/</user_files_path>
    <format_schema_path>$d/data/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <dictionaries_config>$d/*_dictionary.xml</dictionaries_config>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
  cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
  cd "$d"
  launch clickhouse "$d/log/stdout.log" -- "$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)" --config-file="$d/config.xml"
  cd - >/dev/null
}

clickhouse_healthy() {
  clickhouse-client --host 127.0.0.1 --port "$CLICKHOUSE_TCP_PORT" -q 'SELECT 1' | grep -qx 1 &&
    curl -fsS --max-time 3 "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping" | grep -q Ok
}

check_clickhouse() {
  local d=$STATE/clickhouse
  if ! wait_for clickhouse "$CLICKHOUSE_TIMEOUT" clickhouse_healthy; then
    show_log clickhouse "$d/log/clickhouse-server.log" "$d/log/clickhouse-server.err.log" "$d/log/stdout.log"; return 1
  fi
}

version_clickhouse_live() { clickhouse-client --host 127.0.0.1 --port "$CLICKHOUSE_TCP_PORT" -q 'SELECT version()'; }

start_minio() {
  local d=$STATE/minio
  mkdir -p "$d/data" "$d/log"
  cd "$d"
  launch minio "$d/log/minio.log" \
    HOME="$d" MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off MINIO_BROWSER=off \
    MINIO_ROOT_USER="$MINIO_ACCESS_KEY" MINIO_ROOT_PASSWORD="$MINIO_SECRET_KEY" MINIO_SITE_REGION="$S3_REGION" -- \
    "$MINIO_BIN" server --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$d/data"
  cd - >/dev/null
}

minio_healthy() { curl -fsS --max-time 3 "http://127.0.0.1:$MINIO_PORT/minio/health/live" >/dev/null; }

check_minio() {
  if ! wait_for minio "$MINIO_TIMEOUT" minio_healthy; then
    show_log minio "$STATE/minio/log/minio.log"; return 1
  fi
}

version_minio_live() { echo "$MINIO_MODULE@$MINIO_VERSION ($("$MINIO_BIN" --version 2>/dev/null | head -n 1))"; }

ports_of() {
  case $1 in
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
    opensearch) echo "$OPENSEARCH_HTTP_PORT $OPENSEARCH_TRANSPORT_PORT" ;;
    clickhouse) echo "$CLICKHOUSE_TCP_PORT $CLICKHOUSE_HTTP_PORT" ;;
    minio) echo "$MINIO_PORT $MINIO_CONSOLE_PORT" ;;
  esac
}

start_one() {
  local name=$1 t0; t0=$(now)
  # shellcheck disable=SC2046
  require_free_ports "$name" $(ports_of "$name") || return 1
  rm -rf "${STATE:?}/$name"
  mkdir -p "$STATE/$name"
  # Plain calls: errexit stays in force inside them.
  "start_$name"
  "check_$name"
  log "$name: healthy in $(elapsed "$t0")s, pid $(running_pid "$name"), version $("version_${name}_live" 2>/dev/null || echo '?')"
}

# ---------------------------------------------------------------------------
# env file

write_env() {
  local f=$STATE/env s
  {
    echo "# Written by deploy/local/servers.sh: the servers running now."
    for s in "${ALL_SERVERS[@]}"; do
      running_pid "$s" >/dev/null || continue
      case $s in
        kafka) echo "export ERASURE_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT" ;;
        opensearch) echo "export ERASURE_TEST_OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_HTTP_PORT" ;;
        clickhouse)
          echo "export ERASURE_TEST_CLICKHOUSE_ADDR=127.0.0.1:$CLICKHOUSE_TCP_PORT"
          echo "export ERASURE_TEST_CLICKHOUSE_HTTP=http://127.0.0.1:$CLICKHOUSE_HTTP_PORT"
          ;;
        minio)
          echo "export ERASURE_TEST_S3_ENDPOINT=http://127.0.0.1:$MINIO_PORT"
          echo "export ERASURE_TEST_S3_ACCESS_KEY=$MINIO_ACCESS_KEY"
          echo "export ERASURE_TEST_S3_SECRET_KEY=$MINIO_SECRET_KEY"
          echo "export ERASURE_TEST_S3_REGION=$S3_REGION"
          ;;
      esac
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------------------
# commands

lock_state() {
  mkdir -p "$RUN"
  exec 9>"$STATE/.lock"
  flock -w 600 9 || die "another servers.sh holds $STATE/.lock"
}

cmd_start() {
  local t0 s rc=0; t0=$(now)
  do_install "$@"
  lock_state
  # Starting something that is already running restarts it from a clean state.
  for s in "$@"; do stop_server "$s" & done
  wait
  local -A pids=()
  for s in "$@"; do
    log "$s: starting"
    ( start_one "$s" ) >"$RUN/$s.start.out" 2>&1 &
    pids[$s]=$!
  done
  local failed=()
  for s in "$@"; do
    if ! wait "${pids[$s]}"; then failed+=("$s"); rc=1; fi
  done
  for s in "$@"; do cat "$RUN/$s.start.out"; done
  if ((rc != 0)); then
    echo "FAILED to start: ${failed[*]}" >&2
    if [[ ${ERASURE_LOCAL_KEEP_ON_FAILURE:-0} != 1 ]]; then
      for s in "$@"; do stop_server "$s" & done
      wait
    fi
    write_env
    exit 1
  fi
  write_env
  log "started $* in $(elapsed "$t0")s; env file: $STATE/env"
}

cmd_stop() {
  local s
  lock_state
  for s in "$@"; do stop_server "$s" & done
  wait
  write_env
}

cmd_status() {
  local s pid health rc=0
  for s in "$@"; do
    if pid=$(running_pid "$s"); then
      if "${s}_health_quick" >/dev/null 2>&1; then health=healthy; else health=UNHEALTHY; rc=1; fi
      printf '%-11s running  pid %-7s %s (ports %s)\n' "$s" "$pid" "$health" "$(ports_of "$s")"
    else
      printf '%-11s stopped\n' "$s"
    fi
  done
  return $rc
}

kafka_health_quick() { kafka_api_versions; }
opensearch_health_quick() { opensearch_healthy; }
clickhouse_health_quick() { clickhouse_healthy; }
minio_health_quick() { minio_healthy; }

version_installed() {
  case $1 in
    kafka) [[ -f $KAFKA_HOME/.complete ]] && echo "kafka_2.13 $KAFKA_VERSION (Maven Central, $KAFKA_HOME)" ;;
    opensearch) opensearch_complete && echo "opensearch integ-test-zip $OPENSEARCH_VERSION, modules: $(cd "$OPENSEARCH_HOME/modules" && echo *) (Maven Central, $OPENSEARCH_HOME)" ;;
    clickhouse) clickhouse_installed && echo "clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server) (Debian)" ;;
    minio) [[ -x $MINIO_BIN ]] && echo "$(go version -m "$MINIO_BIN" 2>/dev/null | awk '$1 == "mod" { print $2, $3 }') built with $(go version -m "$MINIO_BIN" 2>/dev/null | head -n 1 | awk '{print $2}')" ;;
  esac
}

cmd_versions() {
  local s v
  for s in "$@"; do
    v=$(version_installed "$s") || v="not installed"
    printf '%-11s installed: %s\n' "$s" "$v"
    if running_pid "$s" >/dev/null; then
      printf '%-11s running:   %s\n' "" "$("version_${s}_live" 2>/dev/null || echo '?')"
    fi
  done
}

usage() {
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  if [[ $cmd == kafka-run ]]; then
    do_install kafka
    kafka_java "$@"
    return
  fi
  if [[ $cmd == env ]]; then
    [[ -f $STATE/env ]] && cat "$STATE/env"
    return 0
  fi
  local servers=("$@") s
  ((${#servers[@]})) || servers=("${ALL_SERVERS[@]}")
  for s in "${servers[@]}"; do
    case $s in kafka | opensearch | clickhouse | minio) ;; *) die "unknown server '$s' (want: ${ALL_SERVERS[*]})" ;; esac
  done
  case $cmd in
    install) do_install "${servers[@]}" ;;
    start) cmd_start "${servers[@]}" ;;
    stop) cmd_stop "${servers[@]}" ;;
    restart) cmd_stop "${servers[@]}"; cmd_start "${servers[@]}" ;;
    status) cmd_status "${servers[@]}" ;;
    versions) cmd_versions "${servers[@]}" ;;
    -h | --help | help) usage ;;
    *) die "unknown command '$cmd'" ;;
  esac
}

main "$@"
