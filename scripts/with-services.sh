#!/usr/bin/env bash
# Run CMD [ARGS...] with moto_server (DynamoDB) and stripe-mock on free loopback ports, then stop them.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/venv.sh"

# stripe-mock's version is pinned by tools/go.mod; go build is a no-op when the binary is current.
stripe_mock="$root/.cache/bin/stripe-mock"
GOWORK=off go build -C "$root/tools" -o "$stripe_mock" github.com/stripe/stripe-mock

logdir=$(mktemp -d "${TMPDIR:-/tmp}/with-services.XXXXXX")
pids=()
failed=0

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [[ $failed -eq 0 ]]; then rm -rf "$logdir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Three distinct free ports, held open together while the kernel picks them.
read -r moto_port sm_http_port sm_https_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

# start LOG CMD...: run CMD in its own process group (job control on) so cleanup can kill all of it.
start() {
  local log=$1; shift
  set -m
  "$@" >"$log" 2>&1 </dev/null &
  pids+=("$!")
  set +m
}

# Wait until URL answers HTTP (any status) while PID lives, at most 60 s; else fail with the log tail.
wait_up() {
  local name=$1 url=$2 pid=$3 log=$4 deadline=$((SECONDS + 60))
  until curl -s -o /dev/null --max-time 2 "$url"; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      failed=1
      echo "with-services.sh: $name did not come up at $url; log: $log" >&2
      tail -n 30 "$log" >&2
      echo "with-services.sh: logs kept in $logdir" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# moto is not thread-safe: scripts/moto_server.py serializes its requests.
start "$logdir/moto.log" "$root/.venv/bin/python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$moto_port"
moto_pid=${pids[-1]}
start "$logdir/stripe-mock.log" "$stripe_mock" -strict-version-check \
  -http-addr "127.0.0.1:$sm_http_port" -https-addr "127.0.0.1:$sm_https_port"
sm_pid=${pids[-1]}

wait_up moto_server "http://127.0.0.1:$moto_port/" "$moto_pid" "$logdir/moto.log"
wait_up stripe-mock "http://127.0.0.1:$sm_http_port/" "$sm_pid" "$logdir/stripe-mock.log"

export TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$moto_port"
export TEST_STRIPE_API_BASE="http://127.0.0.1:$sm_http_port"

rc=0
"$@" || rc=$?
exit "$rc"
