"""Print the routes `sam local start-api` would serve from the built template, as JSON.

SAM CLI has no command that lists them without Docker, so this asks the same
provider `sam local start-api` uses (aws-sam-cli pinned in requirements-dev.txt).
internal/lambdatest holds the list against shared/httpapi/routes.go.
Usage: .venv/bin/python scripts/sam-local-routes.py .aws-sam/build/template.yaml
"""
import json
import logging
import sys

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

logging.disable(logging.WARNING)  # "JWT authorizers are not supported locally": known, see samconfig.toml
params = {"JwtIssuer": "https://issuer.invalid", "JwtAudience": "local", "FrontendUrl": "http://localhost:5173"}
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides=params)
routes = [
    {"methods": sorted(r.methods), "path": r.path, "function": r.function_name,
     "payload_format_version": r.payload_format_version, "event_type": r.event_type}
    for r in ApiProvider(stacks).api.routes
]
json.dump(sorted(routes, key=lambda r: (r["path"], r["methods"])), sys.stdout, indent=2)
print()
