#!/usr/bin/env bash
# API fuzzing: run schemathesis (pinned in requirements-dev.txt) against the dev server, checking
# every answer against openapi.yaml. Run it inside scripts/with-services.sh, which exports
# TEST_STRIPE_API_BASE (its stripe-mock); DynamoDB is the dev server's in-process engine.
#
#   bash scripts/with-services.sh bash scripts/api-fuzz.sh [EXAMPLES]
#
# EXAMPLES is schemathesis' --max-examples per operation (default 25; `make fuzz` passes more).
# API_FUZZ_SEED (default 20261125) makes a run reproducible. Exits non-zero on any failure.
set -euo pipefail

examples=${1:-25}
seed=${API_FUZZ_SEED:-20261125}
if ! [[ $examples =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [EXAMPLES]  (a positive number of examples per operation)" >&2
  exit 2
fi
if [[ -z ${TEST_STRIPE_API_BASE:-} ]]; then
  echo "api-fuzz.sh: TEST_STRIPE_API_BASE is not set; run it as: bash scripts/with-services.sh bash scripts/api-fuzz.sh" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/venv.sh
go build -o .cache/bin/devserver ./cmd/devserver

workdir=$(mktemp -d "${TMPDIR:-/tmp}/api-fuzz.XXXXXX")
log="$workdir/devserver.log"
server_pid=
keep=0

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $keep -eq 0 ]]; then rm -rf "$workdir"; else echo "api-fuzz.sh: dev server log kept in $log" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  keep=1
  echo "api-fuzz.sh: $*" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# The dev server uses the stripe-mock of with-services.sh (so it starts none itself), its
# in-process DynamoDB (DYNAMODB_ENDPOINT unset), and fixed JWT and webhook secrets. The
# per-user budgets are at their highest: a fuzzed user spends them in seconds, and a run whose
# valid PATCHes mostly answer 429 would test the budget, not the contract (the budgets have
# tests of their own).
webhook_secret=whsec_api_fuzz_only_not_a_secret_0123456789
env -u DYNAMODB_ENDPOINT -u STRIPE_SECRET_KEY -u STRIPE_SECRET_ARN -u STRIPE_WEBHOOK_SECRET_ARN -u STRIPE_MODE \
  LINKS_PER_HOUR=100 UPDATES_PER_HOUR=100 PORT="$port" STRIPE_API_BASE="$TEST_STRIPE_API_BASE" DEV_JWT_SECRET=api-fuzz-dev-jwt-secret \
  STRIPE_WEBHOOK_SECRET="$webhook_secret" PUBLIC_API_URL="$base" FRONTEND_URL=http://frontend.invalid \
  LOG_LEVEL=INFO .cache/bin/devserver >"$log" 2>&1 </dev/null &
server_pid=$!

deadline=$((SECONDS + 30))
until curl -s -o /dev/null --max-time 2 "$base/dev/token?sub=probe"; do
  kill -0 "$server_pid" 2>/dev/null || fail "the dev server exited"
  ((SECONDS < deadline)) || fail "the dev server did not answer at $base within 30 s"
  sleep 0.1
done

# Tokens from /dev/token and accounts created first, so the /accounts/me routes have something
# to work on: "api-fuzz" is the caller of the run; "api-fuzz-prefill" never gets an onboarding
# link, so PATCH can still reach Stripe; "api-fuzz-submitted" got a signed account.updated with
# details_submitted, so the dashboard link can be issued; "api-fuzz-vetted" is the account the
# staff routes review, and "api-fuzz-staff" a staff member. Prints the four tokens.
python3 - "$base" "$webhook_secret" >"$workdir/tokens" <<'PY' || fail "setting up the fuzzed users failed"
import hashlib, hmac, json, sys, time, urllib.error, urllib.parse, urllib.request

base, secret = sys.argv[1], sys.argv[2]

def call(method, path, token=None, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method, data=body, headers=headers or {})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()

def expect(what, got, want, body):
    if got != want:
        sys.exit(f"{what}: status {got}, want {want}: {body[:500]!r}")

tokens, accounts = [], {}
for sub in ("api-fuzz", "api-fuzz-prefill", "api-fuzz-submitted", "api-fuzz-vetted"):
    status, body = call("GET", "/dev/token?" + urllib.parse.urlencode({"sub": sub, "email": sub + "@example.com"}))
    expect("GET /dev/token", status, 200, body)
    token = json.loads(body)["token"]
    status, body = call("POST", "/accounts", token, b'{"business_type":"individual"}', {"Content-Type": "application/json"})
    expect("POST /accounts as " + sub, status, 201, body)
    tokens.append(token)
    accounts[sub] = json.loads(body)["account_id"]

acct = accounts["api-fuzz-submitted"]
# An event of the account's creation second that disagrees with it is settled by
# reading Stripe (here stripe-mock's fixed account): this one comes a second later.
time.sleep(1.1)
event = json.dumps({
    "id": "evt_api_fuzz_submitted", "object": "event", "type": "account.updated", "api_version": "2023-10-16",
    "created": int(time.time()), "account": acct, "livemode": False, "pending_webhooks": 1,
    "request": {"id": None, "idempotency_key": None},
    "data": {"object": {
        "id": acct, "object": "account", "type": "express", "country": "US",
        "details_submitted": True, "charges_enabled": False, "payouts_enabled": False,
        "metadata": {"platform_user_id": "api-fuzz-submitted"},
        "requirements": {"currently_due": [], "eventually_due": [], "past_due": [], "pending_verification": ["individual.verification.document"],
                         "disabled_reason": None, "current_deadline": None},
        "tos_acceptance": {"service_agreement": "full"},
    }},
}).encode()
ts = int(time.time())
sig = hmac.new(secret.encode(), str(ts).encode() + b"." + event, hashlib.sha256).hexdigest()
status, body = call("POST", "/webhooks/stripe", None, event, {"Content-Type": "application/json", "Stripe-Signature": f"t={ts},v1={sig}"})
expect("signed account.updated", status, 200, body)
status, body = call("GET", "/accounts/me", tokens[2])
expect("GET /accounts/me as api-fuzz-submitted", status, 200, body)
if not json.loads(body)["details_submitted"]:
    sys.exit(f"the signed account.updated did not apply: {body!r}")
status, body = call("GET", "/dev/token?" + urllib.parse.urlencode({"sub": "api-fuzz-staff", "groups": "support,onboarding-staff"}))
expect("GET /dev/token for staff", status, 200, body)
print("\n".join(tokens[:3] + [json.loads(body)["token"]]))
PY
{ read -r token; read -r prefill_token; read -r submitted_token; read -r staff_token; } <"$workdir/tokens"

echo "api-fuzz.sh: schemathesis $("$root/.venv/bin/schemathesis" --version | awk '{print $NF}') against $base, $examples examples per operation, seed $seed" >&2
start=$SECONDS
rc=0
# The hooks put the users' bearer tokens on the protected calls (see scripts/api_fuzz_hooks.py).
# It runs in $workdir, so that its .schemathesis/ cache stays out of the work tree.
(cd "$workdir" && API_FUZZ_BASE_URL="$base" API_FUZZ_TOKEN="$token" API_FUZZ_PREFILL_TOKEN="$prefill_token" \
  API_FUZZ_SUBMITTED_TOKEN="$submitted_token" API_FUZZ_STAFF_TOKEN="$staff_token" SCHEMATHESIS_HOOKS="$root/scripts/api_fuzz_hooks.py" \
  "$root/.venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$root/openapi.yaml" \
  --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --max-examples "$examples" \
  --seed "$seed" \
  --generation-database none \
  --request-timeout 30 \
  --workers 1 \
  --no-color) || rc=$?
echo "api-fuzz.sh: schemathesis finished in $((SECONDS - start)) s with exit code $rc" >&2

kill -0 "$server_pid" 2>/dev/null || fail "the dev server died during the run"
# What the service answered (the authorizer's 401s are not in its log).
echo "api-fuzz.sh: answers by route and status:" >&2
python3 - "$log" >&2 <<'PY'
import collections, json, sys
counts = collections.Counter()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("msg") == "request":
        counts[(rec.get("route"), rec.get("status"))] += 1
for (route, status), n in sorted(counts.items()):
    print(f"  {n:6d}  {status}  {route}")
PY
if grep -q '"level":"ERROR"' "$log"; then
  grep '"level":"ERROR"' "$log" | head -n 20 >&2
  fail "the dev server logged errors"
fi
if [[ $rc -ne 0 ]]; then
  keep=1
  echo "api-fuzz.sh: each failure above shows a curl command that reproduces it against a dev server" >&2
  exit "$rc"
fi
