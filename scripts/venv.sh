#!/usr/bin/env bash
# Create or update the project-local virtualenv .venv/ from requirements-dev.txt (no-op when up to date).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
req="$root/requirements-dev.txt"
stamp="$venv/.requirements.stamp"

# Stamp = host Python version + hash of requirements-dev.txt.
want=$(python3 -c 'import hashlib, sys; print(sys.version.split()[0], hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$req")
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
  exit 0
fi

echo "venv.sh: installing $(basename "$req") into .venv/" >&2
if ! "$venv/bin/python" -c '' 2>/dev/null || [[ "$(cat "$stamp" 2>/dev/null)" != "${want%% *} "* ]]; then
  python3 -m venv --clear "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
printf '%s\n' "$want" > "$stamp"
