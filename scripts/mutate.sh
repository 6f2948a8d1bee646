#!/usr/bin/env bash
# Mutation testing: gremlins (pinned in tools/go.mod) plants bugs in each package, one at a time,
# and runs the package's tests against each. Prints one table: efficacy, coverage and time.
#
# usage: scripts/mutate.sh [PKG...]    PKG like shared/onboarding; default: the four below.
# `make mutate` runs it inside scripts/with-services.sh, because the tests of shared/stripeconnect
# and shared/dynamostore need stripe-mock and moto_server. Results stay in .cache/mutate/.
# The targets and every mutant that lives are in docs/mutation.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

pkgs=("$@")
if [[ ${#pkgs[@]} -eq 0 ]]; then
  pkgs=(shared/onboarding shared/stripeconnect shared/dynamostore shared/httpapi)
fi
# Two workers: the machine has two cores, and each worker runs a whole `go test`.
workers=${MUTATE_WORKERS:-2}

gremlins="$root/.cache/bin/gremlins"
GOWORK=off go build -C "$root/tools" -o "$gremlins" github.com/go-gremlins/gremlins/cmd/gremlins
mutation="$root/.cache/bin/mutation"
go build -o "$mutation" ./cmd/mutation

# A test whose server is missing must fail here, not skip: a skipped test kills no mutant, and
# the figures would lie. So every package needing a server gets it, or the run stops.
for pkg in "${pkgs[@]}"; do
  if grep -qls 'testenv\.' "$pkg"/*_test.go; then
    for v in TEST_DYNAMODB_ENDPOINT TEST_STRIPE_API_BASE; do
      if [[ -z "${!v:-}" ]]; then
        echo "mutate.sh: $pkg needs moto_server and stripe-mock ($v is not set): run make mutate" >&2
        exit 2
      fi
    done
  fi
done

out="$root/.cache/mutate"
rm -rf "$out"
mkdir -p "$out"

# gremlins copies the whole module folder once per worker: give it the files git knows (tracked,
# or new and not ignored), not .venv/, .cache/ or .aws-sam/, which are hundreds of megabytes.
stage=$(mktemp -d "${TMPDIR:-/tmp}/mutate.XXXXXX")
trap 'rm -rf "$stage"' EXIT
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$stage" -xf -

rc=0
reports=()
for pkg in "${pkgs[@]}"; do
  name=${pkg//\//_}
  echo "mutate.sh: $pkg (log: .cache/mutate/$name.log)" >&2
  start=$SECONDS
  # CI=true: an integration test fails rather than skips (internal/testenv).
  # --timeout-coefficient 5: the machine is shared, and a slow run is not a killed mutant.
  # Then cmd/mutation runs the mutants in case clauses, which gremlins cannot see covered.
  if ! (cd "$stage" && CI=true "$gremlins" unleash --workers "$workers" --timeout-coefficient 5 \
      --output "$out/$name.gremlins.json" "./$pkg" &&
    CI=true "$mutation" cases -module "$stage" -pkg "$pkg" -workers "$workers" -timeout-coefficient 5 \
      -report "$out/$name.gremlins.json" -out "$out/$name.json") >"$out/$name.log" 2>&1; then
    echo "mutate.sh: $pkg failed:" >&2
    tail -n 30 "$out/$name.log" >&2
    rc=1
    continue
  fi
  reports+=(-seconds $((SECONDS - start)) "$out/$name.json")
done

if [[ ${#reports[@]} -gt 0 ]]; then
  "$mutation" table "${reports[@]}"
fi
exit "$rc"
