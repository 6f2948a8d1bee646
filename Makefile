# Connect Express onboarding: `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

FUNCTIONS := createaccount accountstatus updateaccount accountlink dashboardlink refresh webhook
GOFLAGS_LAMBDA := -trimpath -tags lambda.norpc -ldflags='-s -w'
STRIPE_MOCK := .cache/bin/stripe-mock

.PHONY: help dev test test-unit vet build clean tools

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

tools: ## install the pinned test tools (Python venv, stripe-mock)
	@bash scripts/venv.sh
	@GOWORK=off go build -C tools -o ../$(STRIPE_MOCK) github.com/stripe/stripe-mock

dev: ## run every route on 127.0.0.1:3000 (in-process DynamoDB, stripe-mock unless STRIPE_* is set)
	@GOWORK=off go build -C tools -o ../$(STRIPE_MOCK) github.com/stripe/stripe-mock
	go run ./cmd/devserver

vet: ## go vet and gofmt check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

test: vet ## all tests, with moto_server and stripe-mock started and stopped around them
	bash scripts/with-services.sh go test -race -count=1 ./...

test-unit: ## tests that need no servers (integration tests skip, except in CI)
	go test -count=1 ./...

build: $(addprefix build-,$(FUNCTIONS)) ## build every function for Lambda (linux/arm64) into bin/

build-%:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_LAMBDA) -o bin/$*/bootstrap ./functions/$*

clean: ## remove build output and caches of the test tools
	rm -rf bin .aws-sam .cache
