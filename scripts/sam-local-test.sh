#!/usr/bin/env bash
# Run the built functions the way `sam local` does, in Lambda containers under
# Docker, as `make test` does: SAM's own image for provided.al2023 on arm64,
# local/env.json, samconfig.toml's local sections, the template's environment,
# and moto and stripe-mock on the host (scripts/local-services.sh).
#
# It makes sure the pieces are there (the Docker daemon, arm64 emulation, the
# base image), then runs scripts/sam-local-checks.py: every function through
# `sam local invoke`, then `sam local start-api` with curl. It stops what it
# started, by PID, removes the containers SAM created, and leaves the Docker
# daemon running only if it found it running.
#
# In CI (CI set) a missing piece fails the run; elsewhere the test skips.
#
# Base image: SAM builds FROM public.ecr.aws/lambda/provided:al2023-arm64. If
# Docker has it, or can pull it, that is used. Otherwise (no registry reachable,
# as on the CI machine) scripts/sam-local-base-image.py builds a stand-in from
# Debian's busybox-static:arm64 under the same name, labelled as a stand-in.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# local/env.json names fixed host ports (moto :5005, stripe-mock :12111) and
# the machine has one Docker daemon: two runs at once (two clones on one
# machine) would share them. The second waits for the first.
exec 9>"${TMPDIR:-/tmp}/connect-onboarding-sam-local.lock"
if ! flock -n 9; then
  echo "sam-local-test.sh: another run holds the sam local ports; waiting for it"
  flock 9
fi

base_image=public.ecr.aws/lambda/provided:al2023-arm64
# Bump the value when scripts/sam-local-base-image.py changes: an older
# stand-in is then rebuilt.
standin_label=org.connectexpress.sam-local-stand-in
standin_version=1
cache="$root/.cache/sam-local"

logdir=$(mktemp -d "${TMPDIR:-/tmp}/sam-local-test.XXXXXX")
dockerd_pid=""
services_pid=""
containers_before=""
failed=1

say() { echo "sam-local-test.sh: $*"; }

# missing WHAT: a piece this test needs is not there.
missing() {
  if [[ -n ${CI:-} ]]; then
    say "FAILED: $* (in CI every piece must be there: .ci/run installs them)" >&2
    exit 1
  fi
  say "SKIPPED: $* (CI=true makes this a failure)"
  failed=0
  exit 0
}

# stop PID [SECONDS]: TERM its process group, then KILL after SECONDS (default 10).
stop() {
  local pid=$1 wait=${2:-10} i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$? id
  set +e
  # SAM's containers carry its label; remove those that were not there before.
  if [[ -n $containers_before ]] && docker info >/dev/null 2>&1; then
    for id in $(docker ps -aq --no-trunc --filter label=sam.cli.container.type=lambda); do
      grep -qx "$id" <<<"$containers_before" || docker rm -f "$id" >/dev/null 2>&1
    done
  fi
  [[ -n $services_pid ]] && stop "$services_pid"
  if [[ -n $dockerd_pid ]]; then
    say "stopping the Docker daemon it started (PID $dockerd_pid)"
    stop "$dockerd_pid" 30
  fi
  if [[ $rc -ne 0 && $failed -ne 0 ]]; then
    say "logs kept in $logdir" >&2
  else
    rm -rf "$logdir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME CMD...: run CMD quietly and print its time, or its log if it fails.
step() {
  local name=$1 start=$EPOCHREALTIME log="$logdir/step.log"
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    say "$name FAILED" >&2
    exit 1
  fi
  printf 'sam-local-test.sh: %-40s ok  %5.1f s\n' "$name" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
}

# --- The Docker daemon -------------------------------------------------------
command -v docker >/dev/null || missing "no docker client"
if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]] || ! command -v dockerd >/dev/null; then
    missing "no Docker daemon answers, and this user cannot start one (root with dockerd, from Debian's docker.io)"
  fi
  # vfs: overlay mounts are not available on every machine (nor in a container).
  # No userland proxy: with it, a published port accepts connections before the
  # container listens, and SAM, which takes a connection as "ready", gives up
  # after 0.7 s of refused requests while the emulator starts under qemu.
  # Without it the port refuses until the emulator listens, and SAM waits.
  say "starting the Docker daemon (dockerd --storage-driver=vfs --userland-proxy=false)"
  set -m
  dockerd --storage-driver=vfs --userland-proxy=false >"$logdir/dockerd.log" 2>&1 </dev/null &
  dockerd_pid=$!
  set +m
  for ((i = 0; ; i++)); do
    docker info >/dev/null 2>&1 && break
    if ! kill -0 "$dockerd_pid" 2>/dev/null || ((i >= 150)); then
      tail -n 20 "$logdir/dockerd.log" >&2
      dockerd_pid=""
      missing "dockerd did not start"
    fi
    sleep 0.2
  done
fi
containers_before=$(docker ps -aq --no-trunc; echo end)

# --- arm64 emulation ---------------------------------------------------------
# template.yaml runs the functions on arm64. An arm64 host (or Docker Desktop's
# VM) runs them natively or emulates them itself; an amd64 Linux host needs
# qemu-user-static registered with binfmt_misc.
if [[ $(uname -s) == Linux && $(uname -m) != aarch64 && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v update-binfmts >/dev/null && [[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P || -e /usr/bin/qemu-aarch64-static ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 >/dev/null
  else
    missing "arm64 binaries cannot run here: install qemu-user-static and binfmt-support (as root)"
  fi
fi

# --- The base image ----------------------------------------------------------
# image_kind: absent, real, or the version of the stand-in Docker has.
image_kind() {
  local label
  label=$(docker image inspect --format "{{index .Config.Labels \"$standin_label\"}}" "$base_image" 2>/dev/null) ||
    { echo absent; return; }
  [[ -z $label || $label == "<no value>" ]] && label=real
  echo "$label"
}
# find_busybox: set deb to Debian's busybox-static:arm64, from .cache/sam-local
# (.ci/run puts it there) or downloaded now.
find_busybox() {
  deb=$(compgen -G "$cache/busybox-static_*_arm64.deb" | head -n 1 || true)
  if [[ -z $deb ]]; then
    mkdir -p "$cache"
    (cd "$cache" && apt-get download busybox-static:arm64) >"$logdir/apt.log" 2>&1 || true
    deb=$(compgen -G "$cache/busybox-static_*_arm64.deb" | head -n 1 || true)
  fi
  [[ -n $deb ]] || missing "no $base_image, none to pull, and no busybox-static:arm64 to build a stand-in from (as root: dpkg --add-architecture arm64 && apt-get update; .ci/run does it)"
}
# build_standin DEB: load the stand-in, and drop the one it replaces.
build_standin() {
  local old
  old=$(docker image inspect --format '{{.Id}}' "$base_image" 2>/dev/null || true)
  rm -rf "$logdir/busybox"
  dpkg-deb -x "$1" "$logdir/busybox"
  python3 scripts/sam-local-base-image.py "$logdir/busybox/bin/busybox" "$base_image" \
    "$standin_label=$standin_version" "$logdir/base-image.tar"
  docker load -i "$logdir/base-image.tar"
  rm -f "$logdir/base-image.tar"
  # SAM's own image built on the old one keeps it until SAM replaces that too.
  [[ -z $old ]] || docker rmi "$old" 2>/dev/null || true
}
kind=$(image_kind)
if [[ $kind == absent ]]; then
  if docker pull --platform linux/arm64 "$base_image" >"$logdir/pull.log" 2>&1; then
    say "pulled $base_image"
  else
    find_busybox
    step "build the stand-in for $base_image" build_standin "$deb"
  fi
elif [[ $kind != real && $kind != "$standin_version" ]]; then
  find_busybox
  step "rebuild the stand-in for $base_image" build_standin "$deb"
fi
if [[ $(image_kind) == real ]]; then
  say "base image: $base_image"
else
  say "base image: the stand-in for $base_image (busybox-static:arm64; see docs/local.md)"
fi
step "arm64 containers run" bash -c "[[ \$(docker run --rm --platform linux/arm64 --entrypoint /bin/sh '$base_image' -c 'uname -m') == aarch64 ]]"

# --- Services on the host, where host.docker.internal points -----------------
# samconfig.toml maps host.docker.internal to the host's gateway: on Linux the
# docker0 bridge, so moto and stripe-mock bind there; Docker Desktop forwards
# it to the host's loopback.
# A daemon started moments ago may not have given docker0 its address yet
# (seen once on a machine's first dockerd start): ask for up to 10 s before
# falling back to loopback, which containers on Linux cannot reach.
services_host=127.0.0.1
for _ in $(seq 50); do
  bridge=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
  if [[ -n $bridge ]] && python3 -c 'import socket, sys; socket.socket().bind((sys.argv[1], 0))' "$bridge" 2>/dev/null; then
    services_host=$bridge
    break
  fi
  sleep 0.2
done
bash scripts/venv.sh
set -m
LOCAL_SERVICES_HOST=$services_host bash scripts/local-services.sh >"$logdir/services.log" 2>&1 </dev/null &
services_pid=$!
set +m
for ((i = 0; ; i++)); do
  grep -q '^local-services.sh: moto on' "$logdir/services.log" &&
    curl -s -o /dev/null --max-time 2 "http://$services_host:12111/" && break
  if ! kill -0 "$services_pid" 2>/dev/null || ((i >= 600)); then
    tail -n 30 "$logdir/services.log" >&2
    say "scripts/local-services.sh did not come up on $services_host (ports 5005, 12111 taken?)" >&2
    exit 1
  fi
  sleep 0.2
done
say "moto and stripe-mock on $services_host"

# --- Build and check ---------------------------------------------------------
export SAM_CLI_TELEMETRY=0
# The functions get these (moto takes any credentials); never the developer's own.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# sam local asks STS for the account id before each invoke; offline, its
# retries cost 5 s. moto answers instead.
export AWS_ENDPOINT_URL_STS="http://$services_host:5005"

step "go build ./functions/... (linux/arm64)" env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 \
  go build -trimpath -tags lambda.norpc ./functions/...
step "sam build" .venv/bin/sam build
step "expand .aws-sam/build/template.yaml" .venv/bin/python scripts/expand-template.py .aws-sam/build/template.yaml

.venv/bin/python scripts/sam-local-checks.py --moto "http://$services_host:5005" --logs "$logdir"
failed=0
say "ok in $SECONDS s (the Docker daemon's stop, if it started it, follows)"
