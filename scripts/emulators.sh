# Sourced by scripts/test: installs (when missing) and starts the servers the integration tests
# talk to, each on a free loopback port, and exports their addresses. A server that cannot be
# installed or started fails the whole run: tests never skip because an emulator is missing.
#
#   moto server (DynamoDB, S3, Timestream write, SNS, SQS)  → FLEETSTREAM_TEST_MOTO_URL
#   InfluxDB 1.x from Debian (line protocol /write, /query)  → FLEETSTREAM_TEST_INFLUXDB_URL
#   kinesalite (Kinesis: shards, resharding, shard end)        → FLEETSTREAM_TEST_KINESALITE_URL
#
# The fault-injecting proxy (tests/fault_proxy.py) is started by each test that needs it, in
# front of one of these, so every test has its own fault plan.

emulator_dir="$(mktemp -d /tmp/fleetstream-emulators.XXXXXX)"
emulator_pids=()

stop_emulators() {
  for pid in "${emulator_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$emulator_dir"
}
trap stop_emulators EXIT

free_port() {
  "$REFERENCE_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for NAME URL LOG PID: polls URL until it answers, or fails with the server's log.
wait_for() {
  local name="$1" url="$2" log="$3" pid="$4"
  for _ in $(seq 1 240); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "emulators: $name exited during start-up; its log:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.25
  done
  echo "emulators: $name did not answer at $url within 60 s; its log:" >&2; cat "$log" >&2; exit 1
}

start_moto() {
  local port; port="$(free_port)"
  "$pyenv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$emulator_dir/moto.log" 2>&1 &
  emulator_pids+=($!)
  wait_for "moto server" "http://127.0.0.1:$port/moto-api/" "$emulator_dir/moto.log" "$!"
  export FLEETSTREAM_TEST_MOTO_URL="http://127.0.0.1:$port"
  echo "emulators: moto server on $FLEETSTREAM_TEST_MOTO_URL" >&2
}

start_influxdb() {
  if ! command -v influxd >/dev/null; then
    echo "emulators: installing Debian's influxdb package" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -q influxdb >"$emulator_dir/apt.log" 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q influxdb >>"$emulator_dir/apt.log" 2>&1; } \
      || { echo "emulators: could not install influxdb:" >&2; cat "$emulator_dir/apt.log" >&2; exit 1; }
  fi
  local port rpc; port="$(free_port)"; rpc="$(free_port)"
  local dir="$emulator_dir/influxdb"; mkdir -p "$dir"
  cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
CONF
  influxd -config "$dir/influxdb.conf" >"$emulator_dir/influxdb.log" 2>&1 &
  emulator_pids+=($!)
  wait_for "influxd" "http://127.0.0.1:$port/ping" "$emulator_dir/influxdb.log" "$!"
  export FLEETSTREAM_TEST_INFLUXDB_URL="http://127.0.0.1:$port"
  echo "emulators: InfluxDB $(influxd version | cut -d' ' -f2) on $FLEETSTREAM_TEST_INFLUXDB_URL" >&2
}

# kinesalite is installed with npm into a directory outside the clone, so later runs reuse it.
kinesalite_version="3.3.3"
kinesalite_dir="${FLEETSTREAM_KINESALITE_DIR:-/var/tmp/fleetstream-kinesalite-$kinesalite_version}"

start_kinesalite() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "emulators: installing node and npm for kinesalite" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    { $sudo apt-get install -y -q nodejs npm || { $sudo apt-get update -q && $sudo apt-get install -y -q nodejs npm; }; } \
      >"$emulator_dir/apt-node.log" 2>&1 \
      || { echo "emulators: could not install node:" >&2; cat "$emulator_dir/apt-node.log" >&2; exit 1; }
  fi
  if [ ! -d "$kinesalite_dir/node_modules/kinesalite" ]; then
    echo "emulators: installing kinesalite@$kinesalite_version with npm" >&2
    mkdir -p "$kinesalite_dir"
    npm install --prefix "$kinesalite_dir" --no-audit --no-fund --loglevel=error \
      "kinesalite@$kinesalite_version" >"$emulator_dir/npm.log" 2>&1 \
      || { echo "emulators: could not install kinesalite:" >&2; cat "$emulator_dir/npm.log" >&2; rm -rf "$kinesalite_dir"; exit 1; }
  fi
  local port; port="$(free_port)"
  # No artificial delays: streams are ACTIVE at once and resharding completes immediately.
  NODE_PATH="$kinesalite_dir/node_modules" node -e "
    require('kinesalite')({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 200})
      .listen($port, '127.0.0.1', function (err) { if (err) throw err; });
  " >"$emulator_dir/kinesalite.log" 2>&1 &
  emulator_pids+=($!)
  wait_for "kinesalite" "http://127.0.0.1:$port/" "$emulator_dir/kinesalite.log" "$!"
  export FLEETSTREAM_TEST_KINESALITE_URL="http://127.0.0.1:$port"
  echo "emulators: kinesalite $kinesalite_version on $FLEETSTREAM_TEST_KINESALITE_URL" >&2
}

export FLEETSTREAM_FAULT_PROXY="$PWD/tests/fault_proxy.py"
# The emulators accept any credentials; the SDK needs some to sign requests.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_ENDPOINT_URL
start_moto
start_influxdb
start_kinesalite
