"""schemathesis hooks for scripts/api-fuzz.sh: whose bearer token each call carries.

api-fuzz.sh creates three users' accounts before the run and passes their tokens:
  API_FUZZ_TOKEN            "api-fuzz", the caller of the run (it gets onboarding links, so
                            its PATCHes soon answer 409 kyc_locked);
  API_FUZZ_PREFILL_TOKEN    "api-fuzz-prefill", never gets a link: PATCH reaches Stripe;
  API_FUZZ_SUBMITTED_TOKEN  "api-fuzz-submitted", details submitted: the dashboard link works;
  API_FUZZ_STAFF_TOKEN      "api-fuzz-staff", in the staff group: the /admin/ routes.
The /admin/ routes mostly get the staff token (every fourth call the caller's, which gets 403
forbidden), and two calls in three name "api-fuzz-vetted" when the generated user_id is a valid
one (so they reach an account rather than 404; an invalid one is left for the 400).
Calls alternate between the caller and the user that reaches further, and every second
POST /accounts comes from a new user (token minted by GET /dev/token), so fuzzed bodies reach
Stripe account creation too, not only the "already exists" answer. The order is fixed by the
run's seed and --workers 1.

A hook is needed because a --header given on the command line takes precedence over anything
a hook sets.
"""

import itertools
import json
import os
import urllib.parse
import urllib.request

import schemathesis

BASE_URL = os.environ["API_FUZZ_BASE_URL"]
TOKEN = os.environ["API_FUZZ_TOKEN"]
ALTERNATE = {
    ("PATCH", "/accounts/me"): os.environ["API_FUZZ_PREFILL_TOKEN"],
    ("POST", "/accounts/me/dashboard-link"): os.environ["API_FUZZ_SUBMITTED_TOKEN"],
}
PUBLIC = {("GET", "/onboarding/refresh"), ("POST", "/webhooks/stripe")}
STAFF_TOKEN = os.environ["API_FUZZ_STAFF_TOKEN"]
VETTED_USER = "api-fuzz-vetted"

_calls = {}


def _mint(sub: str) -> str:
    query = urllib.parse.urlencode({"sub": sub, "email": f"{sub}@example.com"})
    with urllib.request.urlopen(f"{BASE_URL}/dev/token?{query}", timeout=10) as resp:
        return json.load(resp)["token"]


@schemathesis.hook
def before_call(ctx, case, kwargs):
    key = (case.operation.method.upper(), case.operation.path)
    if key in PUBLIC:
        return
    n = next(_calls.setdefault(key, itertools.count()))
    token = TOKEN
    if case.operation.path.startswith("/admin/"):
        if n % 4 != 3:
            token = STAFF_TOKEN
        user = (case.path_parameters or {}).get("user_id")
        if isinstance(user, str) and 1 <= len(user.encode()) <= 256 and n % 3 != 2:
            case.path_parameters["user_id"] = VETTED_USER
    elif n % 2 == 1:
        if key == ("POST", "/accounts"):
            token = _mint(f"api-fuzz-new-{n}")
        elif key in ALTERNATE:
            token = ALTERNATE[key]
    if case.headers is None:
        case.headers = {}
    case.headers["Authorization"] = f"Bearer {token}"
