#!/usr/bin/env bash
# Serve what `sam local start-api` / `sam local invoke` reach on the host
# (samconfig.toml, local/env.json): moto_server on :5005 for DynamoDB and
# Secrets Manager, seeded with the table and the two Stripe secrets, and
# stripe-mock on :12111. Runs until Ctrl-C.
#
# Containers reach the host as host.docker.internal. Docker Desktop forwards
# that to the host's loopback; on Linux it is the docker0 bridge, so bind
# there instead: LOCAL_SERVICES_HOST=172.17.0.1 bash scripts/local-services.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host=${LOCAL_SERVICES_HOST:-127.0.0.1}
moto_port=5005
sm_port=12111
region=us-east-1 # samconfig.toml's local sections run the functions in this region

bash "$root/scripts/venv.sh"
GOWORK=off go build -C "$root/tools" -o "$root/.cache/bin/stripe-mock" github.com/stripe/stripe-mock

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# moto is not thread-safe: scripts/moto_server.py serializes its requests
# (a browser on `sam local start-api` sends several at once).
"$root/.venv/bin/python" "$root/scripts/moto_server.py" -H "$host" -p "$moto_port" &
pids+=("$!")
"$root/.cache/bin/stripe-mock" -strict-version-check -http-addr "$host:$sm_port" -https-addr "$host:$((sm_port + 1))" &
pids+=("$!")
until curl -s -o /dev/null "http://$host:$moto_port/"; do sleep 0.2; done

# The table as template.yaml and shared/dynamostore define it, and the two
# secret documents shared/app reads: the API key's (stripe-mock accepts any
# sk_test_ key) and the webhook signing secrets'. The names are this script's:
# local/env.json must name the same (TABLE_NAME, STRIPE_SECRET_ARN,
# STRIPE_WEBHOOK_SECRET_ARN), and scripts/sam-local-test.sh fails if it does not.
AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "$root/.venv/bin/python" - "http://$host:$moto_port" "$region" <<'PY'
import json, sys
import boto3
endpoint, region = sys.argv[1], sys.argv[2]
table = "connect-onboarding-local"
key_secret, webhook_secret = "connect-onboarding-local/stripe", "connect-onboarding-local/stripe-webhook"
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
if table not in ddb.list_tables()["TableNames"]:
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    ddb.update_time_to_live(TableName=table,
                            TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region)
for name, doc in ((key_secret, {"stripe_secret_key": "sk_test_local"}),
                  (webhook_secret, {"stripe_webhook_secrets": "whsec_local_only_not_a_secret_0123456789ab"})):
    try:
        sm.create_secret(Name=name, SecretString=json.dumps(doc))
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(doc))
print(f"local-services.sh: table {table} and secrets {key_secret}, {webhook_secret} ready on moto")
PY
echo "local-services.sh: moto on $host:$moto_port, stripe-mock on $host:$sm_port; webhook signing secret whsec_local_only_not_a_secret_0123456789ab. Ctrl-C stops them."
wait
