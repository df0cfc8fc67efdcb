#!/usr/bin/env bash
# Runs the ETSI NGSI-LD API conformance suite (Robot Framework) against a
# Panorama binary, offline, and prints pass / fail per group and subgroup.
#
#   scripts/ngsi-ld-conformance.sh SUITE_DIR [PANORAMA_BIN]
#
# SUITE_DIR is a checkout of the ETSI suite (ngsi-ld-test-suite); its files
# are not changed (only a .venv is added when VENV is not given): the suite
# is copied into a scratch dir, where its @context URLs are pointed at a
# local HTTP server (the published ones are on the internet).
# PANORAMA_BIN defaults to the debug build under CARGO_TARGET_DIR or ./target.
#
# Environment (all optional):
#   OUT_DIR        where results go (default: a new temp dir, printed);
#                  one sub-dir per group with robot's output.xml and log.html,
#                  plus summary.txt and failures.tsv
#   SUITE_GROUPS   space-separated groups under TP/NGSI-LD (default:
#                  "CommonBehaviours ContextInformation jsonldContext");
#                  ALL=1 adds ContextSource and DistributedOperations
#   VENV           Python venv holding the suite's requirements
#                  (default: SUITE_DIR/.venv; created and filled when missing
#                  or when requirements.txt changed)
#   PYTHON         interpreter that creates the venv (default: python3)
#   TEST_TIMEOUT   robot timeout per test (default: 60s)
#   GROUP_TIMEOUT  wall-clock limit per group, seconds (default: 3600)
#   ROBOT_ARGS     extra robot arguments, e.g. "--test 001_01*"
#   PANORAMA_NGSILD__ANONYMOUS  access without credentials (default: read_write)
#   BROKER_PORT, CONTEXT_PORT, NOTIFY_PORT, CSOURCE_PORT, CSERVER_PORT,
#   MQTT_ALT_PORT  ports (default: free ports picked at start)
#
# Third-party @contexts a few tests name (smartdatamodels.org,
# fiware.github.io) are served as empty stand-ins; the core context URLs are
# left as they are (a broker has the core context built in). The MQTT tests
# need mosquitto on PATH and an anonymous broker on 127.0.0.1:1883.
set -euo pipefail

usage() { echo "usage: $0 SUITE_DIR [PANORAMA_BIN]" >&2; exit 2; }
[ $# -ge 1 ] || usage
SUITE=$(cd "$1" && pwd)
[ -d "$SUITE/TP/NGSI-LD" ] && [ -f "$SUITE/requirements.txt" ] || {
  echo "$SUITE does not look like the NGSI-LD test suite (no TP/NGSI-LD or requirements.txt)" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${2:-${CARGO_TARGET_DIR:-$REPO/target}/debug/panorama}
[ -x "$BIN" ] || { echo "no panorama binary at $BIN (cargo build -p panorama)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

PYTHON=${PYTHON:-python3}
VENV=${VENV:-$SUITE/.venv}
TEST_TIMEOUT=${TEST_TIMEOUT:-60s}
GROUP_TIMEOUT=${GROUP_TIMEOUT:-3600}
SUITE_GROUPS=${SUITE_GROUPS:-CommonBehaviours ContextInformation jsonldContext}
[ "${ALL:-0}" = 1 ] && SUITE_GROUPS="$SUITE_GROUPS ContextSource DistributedOperations"
# Set it empty to run a binary that has no [ngsild] section.
if [ "${PANORAMA_NGSILD__ANONYMOUS-read_write}" ]; then
  export PANORAMA_NGSILD__ANONYMOUS=${PANORAMA_NGSILD__ANONYMOUS:-read_write}
else
  unset PANORAMA_NGSILD__ANONYMOUS
fi
OUT_DIR=${OUT_DIR:-$(mktemp -d -t ngsi-ld-conformance.XXXXXX)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

# --- Python venv with the suite's requirements (reused while unchanged) ---
REQ_SUM=$(sha256sum "$SUITE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/robot" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_SUM" ]; then
  echo "== venv: installing the suite's requirements into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$SUITE/requirements.txt"
  echo "$REQ_SUM" > "$VENV/.requirements.sha256"
fi
PY="$VENV/bin/python"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BROKER_PORT=${BROKER_PORT:-$(free_port)}
CONTEXT_PORT=${CONTEXT_PORT:-$(free_port)}
NOTIFY_PORT=${NOTIFY_PORT:-$(free_port)}
CSOURCE_PORT=${CSOURCE_PORT:-$(free_port)}
CSERVER_PORT=${CSERVER_PORT:-$(free_port)}
MQTT_ALT_PORT=${MQTT_ALT_PORT:-$(free_port)}

SCRATCH=$(mktemp -d -t ngsi-ld-suite.XXXXXX)
PIDS=()
SERVER_PID=
stop_panorama() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
cleanup() {
  stop_panorama
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- scratch copy of the suite, its @context URLs pointed at a local server ---
WORK="$SCRATCH/suite"
mkdir -p "$WORK"
tar -C "$SUITE" --exclude=./.venv --exclude='./results*' --exclude=./.git -cf - . | tar -C "$WORK" -xf -
LOCAL_CTX="http://127.0.0.1:$CONTEXT_PORT"
ETSI_CTX='https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts'
EGM_CTX='https://easy-global-market.github.io/ngsild-api-data-models/ngsildTestSuite'
grep -rlF -e "$ETSI_CTX" -e "$EGM_CTX" "$WORK" | while read -r f; do
  sed -i -e "s#$ETSI_CTX#$LOCAL_CTX#g" -e "s#$EGM_CTX#$LOCAL_CTX#g" "$f"
done || true
CTX_DIR="$SCRATCH/contexts"
mkdir -p "$CTX_DIR"
cp "$WORK"/resources/jsonld-contexts/*.jsonld "$CTX_DIR/"
# Some payloads name a second published copy of the suite's compound context
# (same terms, core context v1.8); serve it as the suite's own compound.
cp "$CTX_DIR/ngsi-ld-test-suite-compound.jsonld" "$CTX_DIR/ngsildTestSuiteV1.8-compound.jsonld"
# A few @context tests (implicitly created and cached contexts) name
# third-party contexts only to see the broker fetch and list them; none of
# their terms is used. Served here as empty stand-ins under the same path.
for u in http://smartdatamodels.org/context.jsonld \
         https://fiware.github.io/data-models/context.jsonld \
         https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld; do
  rel=third-party/${u#*://}
  mkdir -p "$CTX_DIR/$(dirname "$rel")"
  echo '{"@context": {}}' > "$CTX_DIR/$rel"
  grep -rlF "$u" "$WORK/data" "$WORK/TP" "$WORK/resources" | while read -r f; do
    sed -i "s#$u#$LOCAL_CTX/$rel#g" "$f"
  done || true
done

# The MQTT tests start their broker with docker. Here: the site's broker
# (anonymous, 127.0.0.1:1883) for port 1883, and a mosquitto of our own on
# MQTT_ALT_PORT for the "non-default port" tests (with the suite's password
# file when the test asks for users). On 1883 credentials are not enforced.
MQTT_DIR="$SCRATCH/mqtt"
mkdir -p "$MQTT_DIR"
cp "$WORK/resources/mqttUtils/mosquitto/mosquitto_pwd" "$MQTT_DIR/mosquitto_pwd"
chmod 600 "$MQTT_DIR/mosquitto_pwd"
# "user": run as ourselves (as root, mosquitto would switch to a user that
# cannot read our private scratch dir).
printf 'user %s\nlistener %s 127.0.0.1\nallow_anonymous true\n' \
  "$(id -un)" "$MQTT_ALT_PORT" > "$MQTT_DIR/mosquitto.conf"
printf 'user %s\nlistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\n' \
  "$(id -un)" "$MQTT_ALT_PORT" "$MQTT_DIR/mosquitto_pwd" > "$MQTT_DIR/mosquitto_with_user.conf"
cat > "$WORK/resources/mqttUtils/MqttUtils.resource" <<'ROBOT'
*** Settings ***
Documentation       MQTT broker for the notification tests, without docker
Library             Process
Library             MQTTLibrary

*** Keywords ***
Start Mqtt Server
    [Arguments]    ${conf_file_name}    ${port}
    IF    '${port}' != '1883'
        Start Process    mosquitto    -c    ${mqtt_conf_dir}/${conf_file_name}    alias=mqtt
        Sleep    0.5s
    END

Stop Mqtt Server
    Run Keyword And Ignore Error    Terminate Process    mqtt
ROBOT

cat > "$SCRATCH/serve_contexts.py" <<'EOF'
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".jsonld": "application/ld+json", ".json": "application/json"}
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
    functools.partial(Handler, directory=sys.argv[2])).serve_forever()
EOF
"$PY" "$SCRATCH/serve_contexts.py" "$CONTEXT_PORT" "$CTX_DIR" &
PIDS+=($!)

# Robot has no global per-test timeout option: set one on every test that has none.
cat > "$SCRATCH/test_timeout.py" <<'EOF'
from robot.api import SuiteVisitor
class test_timeout(SuiteVisitor):
    def __init__(self, timeout="60s"):
        self.timeout = timeout
    def visit_test(self, test):
        if not test.timeout:
            test.timeout = self.timeout
EOF

# --- one fresh Panorama per group ---
start_panorama() { # group
  local data="$SCRATCH/data-$1"
  rm -rf "$data"
  "$BIN" serve --data-dir "$data" --listen "127.0.0.1:$BROKER_PORT" > "$OUT_DIR/$1/panorama.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null "http://127.0.0.1:$BROKER_PORT/api/v1/health"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "panorama did not start; its log:" >&2
  tail -20 "$OUT_DIR/$1/panorama.log" >&2
  return 1
}
URL="http://127.0.0.1:$BROKER_PORT/ngsi-ld/v1"
for g in $SUITE_GROUPS; do
  [ -d "$WORK/TP/NGSI-LD/$g" ] || { echo "no group $g in the suite" >&2; exit 2; }
  rm -rf "${OUT_DIR:?}/$g"
  mkdir -p "$OUT_DIR/$g"
  echo "== $g"
  start_panorama "$g"
  set +e
  # shellcheck disable=SC2086 # ROBOT_ARGS is a list of words
  (cd "$WORK" && timeout --kill-after=30 "$GROUP_TIMEOUT" "$VENV/bin/robot" \
    --outputdir "$OUT_DIR/$g" --output output.xml --log log.html --report NONE \
    --consolewidth 150 --console dotted \
    --prerunmodifier "$SCRATCH/test_timeout.py:$TEST_TIMEOUT" \
    --variable "url:$URL" --variable "temporal_api_url:$URL" \
    --variable "ngsild_test_suite_context:$LOCAL_CTX/ngsi-ld-test-suite-compound.jsonld" \
    --variable notification_server_host:127.0.0.1 --variable "notification_server_port:$NOTIFY_PORT" \
    --variable mqtt_broker_host:127.0.0.1 --variable "mqtt_broker_non_default_port:$MQTT_ALT_PORT" \
    --variable "mqtt_conf_dir:$MQTT_DIR" \
    --variable context_source_host:127.0.0.1 --variable "context_source_port:$CSOURCE_PORT" \
    --variable context_server_host:127.0.0.1 --variable "context_server_port:$CSERVER_PORT" \
    ${CORE_CONTEXT:+--variable "core_context:$CORE_CONTEXT"} \
    ${ROBOT_ARGS:-} "TP/NGSI-LD/$g") > "$OUT_DIR/$g/console.txt" 2>&1
  rc=$?
  set -e
  stop_panorama
  [ "$rc" -eq 124 ] && echo "   $g stopped after $GROUP_TIMEOUT s (GROUP_TIMEOUT)"
  [ -f "$OUT_DIR/$g/output.xml" ] || { echo "   robot wrote no output.xml; see $OUT_DIR/$g/console.txt"; tail -5 "$OUT_DIR/$g/console.txt"; }
done

# --- pass / fail per group and subgroup, failures listed for reading ---
cat > "$SCRATCH/summary.py" <<'EOF'
import os, sys
from collections import defaultdict
from robot.api import ExecutionResult
out, groups = sys.argv[1], sys.argv[2:]
counts = defaultdict(lambda: [0, 0, 0])  # pass, fail, skip
failures = []
def walk(suite, path):
    for test in suite.tests:
        i = {"PASS": 0, "FAIL": 1, "SKIP": 2}.get(test.status, 1)
        for depth in (1, 2, 3):
            if len(path) >= depth:
                counts[".".join(path[:depth])][i] += 1
        if test.status == "FAIL":
            msg = " ".join(test.message.split())[:400]
            failures.append((".".join(path), test.name, msg))
    for child in suite.suites:
        walk(child, path + [child.name])
for g in groups:
    xml = os.path.join(out, g, "output.xml")
    if not os.path.exists(xml):
        counts[g]  # reported as missing
        continue
    walk(ExecutionResult(xml).suite, [g])
lines = [f"{'group':62} {'pass':>5} {'fail':>5} {'skip':>5} {'total':>6}"]
total = [0, 0, 0]
for key in sorted(counts, key=lambda k: (groups.index(k.split('.')[0]), k)):
    depth = key.count(".")
    if depth > 2:
        continue
    p, f, s = counts[key]
    if depth == 0:
        total = [a + b for a, b in zip(total, (p, f, s))]
    lines.append(f"{'  ' * depth + key.split('.')[-1]:62} {p:5} {f:5} {s:5} {p + f + s:6}")
lines.append(f"{'all':62} {total[0]:5} {total[1]:5} {total[2]:5} {sum(total):6}")
text = "\n".join(lines)
print(text)
with open(os.path.join(out, "summary.txt"), "w") as fh:
    fh.write(text + "\n")
with open(os.path.join(out, "failures.tsv"), "w") as fh:
    for row in failures:
        fh.write("\t".join(row) + "\n")
EOF
echo "== results ($OUT_DIR)"
# shellcheck disable=SC2086 # SUITE_GROUPS is a list of words
"$PY" "$SCRATCH/summary.py" "$OUT_DIR" $SUITE_GROUPS
