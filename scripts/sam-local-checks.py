"""The checks of scripts/sam-local-test.sh, which sets the stage first.

Every function runs through `sam local invoke` with the payload 2.0 events of
internal/lambdatest/testdata/ (the protected routes' events carry JWT claims),
one onboarding journey with real effects in moto and stripe-mock; then the
public routes and the missing authorizer through `sam local start-api`, with
curl. SAM reads samconfig.toml's local sections, so local/env.json and the
template's environment are what the functions get, as a developer's would.

Usage: .venv/bin/python scripts/sam-local-checks.py --moto URL --logs DIR
"""
import argparse
import copy
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "internal" / "lambdatest" / "testdata"
SAM = [str(ROOT / ".venv" / "bin" / "sam")]
# scripts/local-services.sh stores this signing secret; the API key it stores
# is sk_test_local. Neither may reach a log line.
WEBHOOK_SECRET = "whsec_local_only_not_a_secret_0123456789ab"
SECRETS = {"Stripe key": "sk_test_local", "webhook secret": WEBHOOK_SECRET}
ACCOUNT_FIELDS = {"account_id", "status", "details_submitted", "charges_enabled", "payouts_enabled",
                  "country", "service_agreement", "requirements", "created_at", "updated_at"}
REQUIREMENTS_FIELDS = {"currently_due", "eventually_due", "past_due", "pending_verification",
                       "disabled_reason", "current_deadline"}
INIT = re.compile(r"REPORT RequestId: \S+\s+Init Duration: ([0-9.]+) ms")


class CheckFailed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise CheckFailed(what)


class Run:
    def __init__(self, logs: Path, moto: str):
        self.logs = logs
        self.moto = moto
        self.n = 0
        self.init_ms: dict[str, float] = {}
        self.outputs: list[str] = []  # every function log SAM printed
        self.last_log = ""

    def fixture(self, name: str) -> dict:
        return json.loads((FIXTURES / name).read_text())

    def invoke(self, function: str, event: dict, what: str) -> dict:
        """sam local invoke FUNCTION with EVENT; the function's HTTP API response."""
        self.n += 1
        path = self.logs / f"{self.n:02d}-{function}.event.json"
        path.write_text(json.dumps(event))
        start = time.monotonic()
        proc = subprocess.run(SAM + ["local", "invoke", function, "--skip-pull-image", "-e", str(path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=180)
        took = time.monotonic() - start
        (self.logs / f"{self.n:02d}-{function}.log").write_text(proc.stderr)
        self.outputs.append(proc.stderr)
        self.last_log = proc.stderr
        if m := INIT.search(proc.stderr):
            self.init_ms.setdefault(function, float(m.group(1)))
        try:
            resp = json.loads(proc.stdout.strip() or "null")
        except json.JSONDecodeError:
            resp = None
        if proc.returncode != 0 or not isinstance(resp, dict) or "statusCode" not in resp:
            raise CheckFailed(f"{what}: sam local invoke {function} exited {proc.returncode} with {proc.stdout.strip()!r}\n"
                              + tail(proc.stderr))
        print(f"sam-local-checks.py: invoke {function:<22} {what:<44} {resp['statusCode']}  {took:4.1f} s", flush=True)
        return resp

    def body(self, resp: dict, what: str):
        try:
            return json.loads(resp.get("body") or "")
        except json.JSONDecodeError:
            raise CheckFailed(f"{what}: body {resp.get('body')!r} is not JSON")


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def want_status(resp: dict, status: int, what: str):
    check(resp["statusCode"] == status, f"{what}: status {resp['statusCode']}, want {status}; body {resp.get('body')!r}")


def want_json_headers(resp: dict, what: str):
    headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    check(headers.get("content-type", "").startswith("application/json"), f"{what}: Content-Type {headers.get('content-type')!r}")
    check(headers.get("cache-control") == "no-store", f"{what}: Cache-Control {headers.get('cache-control')!r}, want no-store")


def want_account(body, what: str) -> dict:
    check(isinstance(body, dict) and ACCOUNT_FIELDS <= body.keys(), f"{what}: {body!r} is not an Account")
    check(str(body["account_id"]).startswith("acct_"), f"{what}: account_id {body['account_id']!r}")
    check(isinstance(body["requirements"], dict) and REQUIREMENTS_FIELDS <= body["requirements"].keys(),
          f"{what}: requirements {body['requirements']!r}")
    return body


def want_error(body, code: str, what: str):
    err = body.get("error") if isinstance(body, dict) else None
    check(isinstance(err, dict) and err.get("code") == code and isinstance(err.get("message"), str) and err["message"],
          f"{what}: {body!r}, want the error envelope with code {code}")


def sign(payload: bytes, secret: str, at: int) -> str:
    """A Stripe-Signature header, as Stripe computes it."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def account_updated(event_id: str, account_id: str, user_id: str, created: int) -> bytes:
    """A Connect account.updated event for a fully onboarded account (API version 2023-10-16)."""
    due: list[str] = []
    return json.dumps({
        "id": event_id, "object": "event", "type": "account.updated", "api_version": "2023-10-16",
        "created": created, "account": account_id, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": account_id, "object": "account", "type": "express", "country": "US",
            "details_submitted": True, "charges_enabled": True, "payouts_enabled": True,
            "metadata": {"platform_user_id": user_id},
            "requirements": {"currently_due": due, "eventually_due": due, "past_due": due,
                             "pending_verification": due, "disabled_reason": None, "current_deadline": None},
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "tos_acceptance": {"service_agreement": "full"},
        }},
    }, separators=(",", ":")).encode()


def with_body(event: dict, body: bytes, signature: str | None) -> dict:
    event = copy.deepcopy(event)
    event["body"], event["isBase64Encoded"] = body.decode(), False
    event["headers"]["content-length"] = str(len(body))
    if signature is None:
        event["headers"].pop("stripe-signature", None)
    else:
        event["headers"]["stripe-signature"] = signature
    return event


def stored_items(moto: str) -> list[dict]:
    """Every item of every table on moto: the table scripts/local-services.sh made."""
    ddb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    items = []
    for table in ddb.list_tables()["TableNames"]:
        items += ddb.scan(TableName=table)["Items"]
    return items


def invoke_every_function(run: Run, frontend_url: str) -> dict:
    """One journey through the seven functions, each in its own container."""
    claims = run.fixture("create_account.json")["requestContext"]["authorizer"]["jwt"]["claims"]
    items_before = len(stored_items(run.moto))

    what = "POST /accounts creates the account"
    resp = run.invoke("CreateAccountFunction", run.fixture("create_account.json"), what)
    want_status(resp, 201, what)
    want_json_headers(resp, what)
    acct = want_account(run.body(resp, what), what)
    check(acct["status"] == "onboarding" and not acct["details_submitted"] and acct["country"] == "US",
          f"{what}: {acct!r}")
    # The effect: stripe-mock created it, and the function stored it on moto.
    items = stored_items(run.moto)
    check(len(items) > items_before and any(acct["account_id"] in json.dumps(i) for i in items),
          f"{what}: no item on moto names {acct['account_id']}")

    what = "PATCH /accounts/me prefills it"
    resp = run.invoke("UpdateAccountFunction", run.fixture("update_account.json"), what)
    want_status(resp, 200, what)
    check(want_account(run.body(resp, what), what)["account_id"] == acct["account_id"], f"{what}: another account")

    what = "POST /accounts/me/onboarding-link links"
    resp = run.invoke("AccountLinkFunction", run.fixture("onboarding_link.json"), what)
    want_status(resp, 200, what)
    want_json_headers(resp, what)
    link = run.body(resp, what)
    check(isinstance(link, dict) and link.keys() == {"url", "expires_at"} and str(link["url"]).startswith("https://"),
          f"{what}: {link!r}, want {{url, expires_at}}")

    what = "POST /accounts/me/dashboard-link refused"
    resp = run.invoke("DashboardLinkFunction", run.fixture("dashboard_link.json"), what)
    want_status(resp, 409, what)
    want_json_headers(resp, what)
    want_error(run.body(resp, what), "onboarding_incomplete", what)

    now = int(time.time())
    payload = account_updated(f"evt_samlocal{now}", acct["account_id"], claims["sub"], now)
    what = "POST /webhooks/stripe unsigned"
    resp = run.invoke("WebhookFunction", with_body(run.fixture("webhook.json"), payload, None), what)
    want_status(resp, 400, what)
    want_error(run.body(resp, what), "invalid_signature", what)

    what = "POST /webhooks/stripe signed account.updated"
    resp = run.invoke("WebhookFunction", with_body(run.fixture("webhook.json"), payload, sign(payload, WEBHOOK_SECRET, now)), what)
    want_status(resp, 200, what)
    check(run.body(resp, what) == {"received": True}, f"{what}: body {resp.get('body')!r}")

    what = "GET /accounts/me reads what the webhook stored"
    resp = run.invoke("AccountStatusFunction", run.fixture("account_status.json"), what)
    want_status(resp, 200, what)
    want_json_headers(resp, what)
    got = want_account(run.body(resp, what), what)
    check(got["account_id"] == acct["account_id"] and got["status"] == "active" and got["details_submitted"],
          f"{what}: {got!r}, want {acct['account_id']} active with details submitted")

    what = "GET /onboarding/refresh, unknown token"
    event = run.fixture("refresh.json")
    event["rawQueryString"], event["queryStringParameters"] = "token=unknown", {"token": "unknown"}
    resp = run.invoke("RefreshFunction", event, what)
    want_status(resp, 302, what)
    location = (resp.get("headers") or {}).get("Location")
    check(location == frontend_url + "/onboarding?error=link_expired",
          f"{what}: Location {location!r}, want {frontend_url}/onboarding?error=link_expired")
    return {"account_id": acct["account_id"], "user_id": claims["sub"], "link": link["url"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl(*args: str) -> tuple[int, dict, str]:
    """curl ARGS...: the status, the headers (lower-case names) and the body."""
    proc = subprocess.run(["curl", "-sS", "--max-time", "120", "-D", "-", *args], capture_output=True, text=True)
    check(proc.returncode == 0, f"curl {' '.join(args)}: {proc.stderr.strip()}")
    head, _, body = proc.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def start_api(run: Run, frontend_url: str, journey: dict):
    """The public routes and a protected one through `sam local start-api`, with curl."""
    port = free_port()
    log = (run.logs / "start-api.log").open("w")
    proc = subprocess.Popen(SAM + ["local", "start-api", "--skip-pull-image", "-p", str(port)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            check(proc.poll() is None, "sam local start-api exited:\n" + tail((run.logs / "start-api.log").read_text()))
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            check(time.monotonic() < deadline, "sam local start-api did not listen within 120 s")
            time.sleep(0.2)

        def show(what, status, took):
            print(f"sam-local-checks.py: start-api {what:<58} {status}  {took:4.1f} s", flush=True)

        what = "GET /onboarding/refresh?token=nope"
        t = time.monotonic()
        status, headers, _ = curl(f"{base}/onboarding/refresh?token=nope")
        show(what, status, time.monotonic() - t)
        check(status == 302 and headers.get("location") == frontend_url + "/onboarding?error=link_expired",
              f"{what}: {status} Location {headers.get('location')!r}, want 302 to {frontend_url}/onboarding?error=link_expired")

        now = int(time.time())
        payload = account_updated(f"evt_samlocalapi{now}", journey["account_id"], journey["user_id"], now)
        what = "POST /webhooks/stripe signed"
        t = time.monotonic()
        status, _, body = curl("-X", "POST", f"{base}/webhooks/stripe", "-H", "Content-Type: application/json",
                               "-H", "Stripe-Signature: " + sign(payload, WEBHOOK_SECRET, now), "--data-binary", payload.decode())
        show(what, status, time.monotonic() - t)
        check(status == 200 and json.loads(body or "null") == {"received": True}, f"{what}: {status} {body!r}")

        what = "POST /webhooks/stripe unsigned"
        t = time.monotonic()
        status, _, body = curl("-X", "POST", f"{base}/webhooks/stripe", "-H", "Content-Type: application/json",
                               "--data-binary", payload.decode())
        show(what, status, time.monotonic() - t)
        check(status == 400, f"{what}: {status} {body!r}, want 400")
        want_error(json.loads(body or "null"), "invalid_signature", what)

        # SAM does not emulate JWT authorizers: the function gets no claims.
        what = "GET /accounts/me with a bearer token (no authorizer here)"
        t = time.monotonic()
        status, _, body = curl(f"{base}/accounts/me", "-H", "Authorization: Bearer not-checked-by-sam")
        show(what, status, time.monotonic() - t)
        check(status == 401, f"{what}: {status} {body!r}, want 401")
        want_error(json.loads(body or "null"), "unauthorized", what)
    finally:
        # Ctrl-C: SAM stops and removes its warm containers.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        run.outputs.append((run.logs / "start-api.log").read_text())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moto", required=True)
    ap.add_argument("--logs", required=True, type=Path)
    args = ap.parse_args()
    frontend_url = json.loads((ROOT / "local" / "env.json").read_text())["Parameters"]["FRONTEND_URL"]
    run = Run(args.logs, args.moto)
    start = time.monotonic()
    try:
        journey = invoke_every_function(run, frontend_url)
        start_api(run, frontend_url, journey)
        claims = run.fixture("create_account.json")["requestContext"]["authorizer"]["jwt"]["claims"]
        leaks = dict(SECRETS, **{"email": claims["email"], "link URL": journey["link"]})
        for what, value in leaks.items():
            check(not any(value in out for out in run.outputs), f"a function logged the {what}")
    except CheckFailed as e:
        print(f"sam-local-checks.py: FAILED: {e}", file=sys.stderr)
        if run.last_log:
            print(f"sam-local-checks.py: the last invoke's output:\n{tail(run.last_log)}", file=sys.stderr)
        sys.exit(1)
    inits = ", ".join(f"{fn} {ms:.1f}" for fn, ms in run.init_ms.items())
    print(f"sam-local-checks.py: ok in {time.monotonic() - start:.1f} s; Init Duration (ms, qemu if emulated): {inits}")


if __name__ == "__main__":
    main()
