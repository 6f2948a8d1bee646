# Connect Express onboarding: `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

GOFLAGS_LAMBDA := -trimpath -tags lambda.norpc -ldflags='-s -w'
STRIPE_MOCK := .cache/bin/stripe-mock
STATICCHECK := .cache/bin/staticcheck
SAM := SAM_CLI_TELEMETRY=0 .venv/bin/sam
# The deployed stack (samconfig.toml's stack_name) for register-webhook.
STACK ?= connect-onboarding
# Lambda runs these functions on arm64 (template.yaml). Tests override it with
# the host's architecture to run the same build under the Runtime Interface Emulator.
LAMBDA_GOARCH ?= arm64

.PHONY: help dev reconcile test test-unit vet build deploy register-webhook clean tools fuzz bench mutate

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-28s %s\n", $$1, $$2}'

tools: ## install the pinned test tools (Python venv with moto, aws-sam-cli, cfn-lint; stripe-mock)
	@bash scripts/venv.sh
	@GOWORK=off go build -C tools -o ../$(STRIPE_MOCK) github.com/stripe/stripe-mock

dev: ## every route on 127.0.0.1:3000, the example frontend on :5173, the staff console on :5174, the local Stripe simulator on :3001 (unless STRIPE_* is set)
	go run ./cmd/devserver

reconcile: ## run the reconciliation sweep once in the running `make dev` (PORT, default 3000)
	@curl -sS --fail-with-body -XPOST "http://127.0.0.1:$(or $(PORT),3000)/dev/reconcile"; echo

vet: ## gofmt check, go vet, and staticcheck (pinned in tools/go.mod)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	@GOWORK=off go build -C tools -o ../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
	$(STATICCHECK) ./...

test: vet ## all checks: workflows (actionlint), template (sam validate --lint, cfn-lint, sam build), sam local in Docker, API fuzzing, then every Go test on moto and stripe-mock
	bash scripts/actionlint.sh
	bash scripts/check-template.sh
	bash scripts/sam-local-test.sh
	bash scripts/with-services.sh bash scripts/api-fuzz.sh 25
	bash scripts/with-services.sh go test -race -count=1 ./...

FUZZTIME ?= 60

fuzz: ## each Go fuzz target for FUZZTIME s (default 60), then schemathesis with API_FUZZ_EXAMPLES (default 1000) per operation
	bash scripts/fuzz.sh $(FUZZTIME)

bench: ## size, what each function links, cold start beside hello-world and the DynamoDB floor (ROUNDS=15), per-route latency, requests and cost, the sweep at 10,000 and 1,000,000 accounts, the dev server's webhook storm (about 5 minutes)
	bash scripts/with-services.sh go run ./cmd/bench -rounds $(or $(ROUNDS),15)

# Slow (minutes per package), so not part of `make test`; .ci/run runs it when MUTATE=1.
mutate: ## mutation testing (gremlins, pinned in tools/go.mod) of the core, the adapters and httpapi on moto and stripe-mock: one table (PKGS=shared/onboarding for one; docs/mutation.md)
	bash scripts/with-services.sh bash scripts/mutate.sh $(PKGS)

test-unit: ## tests that need no servers (integration tests skip, except in CI)
	go test -count=1 ./...

build: tools ## sam build: every function for Lambda (linux/arm64) into .aws-sam/build
	@# Compile the packages once: sam build's parallel per-function builds then only link.
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -tags lambda.norpc ./functions/...
	$(SAM) build
	@# SAM CLI's own Fn::ForEach expansion breaks sam local's routes: expand it faithfully.
	.venv/bin/python scripts/expand-template.py .aws-sam/build/template.yaml

deploy: build ## sam deploy (first time: make deploy GUIDED=1, which saves your answers to samconfig.toml)
	@[[ -n "$(GUIDED)" ]] || echo "deploy: first deploy of a stack? run: make deploy GUIDED=1 (sam deploy --guided)"
	$(SAM) deploy $(if $(GUIDED),--guided)

register-webhook: ## register the stack's webhook URL at Stripe (Connect) and store its signing secret (STACK=...)
	go run ./cmd/registerwebhook -stack $(STACK) $(ARGS)

# One target per function of template.yaml: `sam build` runs
# `make build-<LogicalId>` with ARTIFACTS_DIR set, and Lambda's provided.al2023
# runtime runs $(ARTIFACTS_DIR)/bootstrap. Static (CGO_ENABLED=0), no RPC
# fallback (lambda.norpc), no paths or debug data in the binary.
define lambda_build
	@[[ -n "$(ARTIFACTS_DIR)" ]] || { echo "ARTIFACTS_DIR is not set: sam build sets it (or run make build)" >&2; exit 2; }
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) go build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)
endef

build-CreateAccountFunction: ## (sam build) POST /accounts
	$(call lambda_build,createaccount)

build-AccountStatusFunction: ## (sam build) GET /accounts/me
	$(call lambda_build,accountstatus)

build-UpdateAccountFunction: ## (sam build) PATCH /accounts/me
	$(call lambda_build,updateaccount)

build-AccountLinkFunction: ## (sam build) POST /accounts/me/onboarding-link
	$(call lambda_build,accountlink)
build-OnboardingSessionFunction: ## (sam build) POST /accounts/me/onboarding-session
	$(call lambda_build,onboardingsession)

build-DashboardLinkFunction: ## (sam build) POST /accounts/me/dashboard-link
	$(call lambda_build,dashboardlink)

build-RefreshFunction: ## (sam build) GET /onboarding/refresh
	$(call lambda_build,refresh)

build-WebhookFunction: ## (sam build) POST /webhooks/stripe
	$(call lambda_build,webhook)

build-AdminListAccountsFunction: ## (sam build) GET /admin/accounts (staff)
	$(call lambda_build,adminlistaccounts)

build-AdminGetAccountFunction: ## (sam build) GET /admin/accounts/{user_id} (staff)
	$(call lambda_build,admingetaccount)

build-AdminReviewAccountFunction: ## (sam build) POST /admin/accounts/{user_id}/review (staff)
	$(call lambda_build,adminreviewaccount)

build-ReconcileFunction: ## (sam build) the reconciliation sweep, on a schedule
	$(call lambda_build,reconcile)

build-StatusEventsFunction: ## (sam build) status-change events, on the table's stream
	$(call lambda_build,statusevents)

.PHONY: build-CreateAccountFunction build-AccountStatusFunction build-UpdateAccountFunction build-AccountLinkFunction build-OnboardingSessionFunction \
	build-DashboardLinkFunction build-RefreshFunction build-WebhookFunction \
	build-AdminListAccountsFunction build-AdminGetAccountFunction build-AdminReviewAccountFunction \
	build-ReconcileFunction build-StatusEventsFunction

clean: ## remove build output and caches of the test tools
	rm -rf bin .aws-sam .cache
