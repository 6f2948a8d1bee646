#!/usr/bin/env bash
# Fuzz for a bounded time: every native Go fuzz target (found with `go test -list '^Fuzz'`) for
# SECONDS each, then schemathesis against the dev server with API_FUZZ_EXAMPLES examples per
# operation (inside scripts/with-services.sh). Fails if any of them finds a crash.
#
#   bash scripts/fuzz.sh [SECONDS]      (default 60 s per Go target; API_FUZZ_EXAMPLES default 1000)
#
# A Go failure leaves its input in the package's testdata/fuzz/<FuzzName>/: commit it with the fix,
# and plain `go test` replays it from then on.
set -euo pipefail

seconds=${1:-60}
examples=${API_FUZZ_EXAMPLES:-1000}
if ! [[ $seconds =~ ^[1-9][0-9]*$ && $examples =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (positive; API_FUZZ_EXAMPLES likewise)" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# "FuzzName" lines come before the "ok  <package>" line of their package.
targets=()
names=()
while read -r first second _; do
  case $first in
    Fuzz*) names+=("$first") ;;
    ok)
      for name in "${names[@]}"; do targets+=("$second $name"); done
      names=()
      ;;
  esac
done < <(go test -list '^Fuzz' ./...)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz.sh: no Go fuzz targets found" >&2
  exit 1
fi

failed=()
summary=()
for target in "${targets[@]}"; do
  read -r pkg name <<<"$target"
  echo "fuzz.sh: $name in $pkg for ${seconds}s" >&2
  start=$SECONDS
  if go test -run='^$' -fuzz="^${name}\$" -fuzztime="${seconds}s" "$pkg"; then
    summary+=("ok    $name ($pkg) $((SECONDS - start)) s")
  else
    failed+=("$name")
    summary+=("FAIL  $name ($pkg): the failing input is in its testdata/fuzz/$name/")
  fi
done

start=$SECONDS
if bash scripts/with-services.sh bash scripts/api-fuzz.sh "$examples"; then
  summary+=("ok    schemathesis, $examples examples per operation, $((SECONDS - start)) s")
else
  failed+=("schemathesis")
  summary+=("FAIL  schemathesis, $examples examples per operation")
fi

echo "fuzz.sh: summary" >&2
printf '  %s\n' "${summary[@]}" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
