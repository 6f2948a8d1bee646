#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint, pinned in tools/go.mod, as `make test` does.
# Its shellcheck and pyflakes passes stay off: they run only where those programs happen to be
# installed (the GitHub runner has shellcheck, this project's machines do not), and the same
# `make test` must give the same answer everywhere.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=.cache/bin/actionlint
GOWORK=off go build -C tools -o "../$bin" github.com/rhysd/actionlint/cmd/actionlint
"$bin" -shellcheck= -pyflakes= "$@"
echo "actionlint.sh: $("$bin" -version | head -n 1) found nothing in .github/workflows/" >&2
