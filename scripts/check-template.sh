#!/usr/bin/env bash
# Check the deploy path offline, as `make test` does before the Go tests:
# sam validate --lint, cfn-lint, then sam build of every function into
# .aws-sam/build (internal/lambdatest then checks those artifacts).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/venv.sh

export SAM_CLI_TELEMETRY=0
# --lint runs cfn-lint offline; SAM still wants a region when no AWS config exists.
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
log=$(mktemp "${TMPDIR:-/tmp}/check-template.XXXXXX")
trap 'rm -f "$log"' EXIT

# step NAME CMD...: run CMD quietly; print its time, or its output if it fails.
step() {
  local name=$1 start=$EPOCHREALTIME
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "check-template.sh: $name FAILED" >&2
    exit 1
  fi
  printf 'check-template.sh: %-40s ok  %5.1f s\n' "$name" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
}

step "sam validate --lint" .venv/bin/sam validate --lint --region "$region"
# .cfnlintrc.yaml adds the informational checks.
step "cfn-lint template.yaml" .venv/bin/cfn-lint template.yaml
# The template after its transforms (Fn::ForEach, then SAM), as CloudFormation
# gets it: cfn-lint finds circular dependencies there that it misses in the SAM form.
mkdir -p .aws-sam
step "cfn-lint (after the SAM transform)" bash -c '.venv/bin/python scripts/expand-template.py template.yaml .aws-sam/expanded.yaml &&
  .venv/bin/python scripts/sam-transform.py .aws-sam/expanded.yaml > .aws-sam/transformed.json && .venv/bin/cfn-lint .aws-sam/transformed.json'
# Compile every function's packages once in one process, so that the parallel
# per-function builds of sam build only link: on a cold Go cache, seven
# concurrent go builds would each compile the same dependencies.
step "go build ./functions/... (linux/arm64)" env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 \
  go build -trimpath -tags lambda.norpc ./functions/...
# samconfig.toml: build in source, parallel, no SAM cache. Then expand its
# Fn::ForEach for sam local, as `make build` does (scripts/expand-template.py).
step "sam build" .venv/bin/sam build
step "expand .aws-sam/build/template.yaml" .venv/bin/python scripts/expand-template.py .aws-sam/build/template.yaml
# The routes sam local start-api would serve (internal/lambdatest compares them
# with the contract).
step "sam local start-api routes" bash -c '.venv/bin/python scripts/sam-local-routes.py .aws-sam/build/template.yaml > .aws-sam/local-routes.json'
