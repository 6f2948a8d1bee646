#!/usr/bin/env bash
# Install, as root and only when missing, the Debian packages `make test`
# needs beyond the repository's own tools (.ci/run calls this before it).
# Quick when everything is there: no apt-get call at all.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "ci-setup.sh: not root on Debian; install the packages below yourself if a test says they are missing" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
updated=""
apt_update() { [[ -n $updated ]] || { apt-get update -qq; updated=1; }; }

# --- sam local under Docker (scripts/sam-local-test.sh) ----------------------
# The Docker daemon, and qemu registered with binfmt_misc so that the arm64
# Lambda containers run on an amd64 host.
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[[ -e /usr/bin/qemu-aarch64-static ]] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if ((${#need[@]})); then
  echo "ci-setup.sh: installing ${need[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's arm64 busybox, from which scripts/sam-local-test.sh builds the
# stand-in for Lambda's base image when no registry has the real one.
cache="$root/.cache/sam-local"
if ! compgen -G "$cache/busybox-static_*_arm64.deb" >/dev/null; then
  echo "ci-setup.sh: downloading busybox-static:arm64 into .cache/sam-local"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    updated=""
    apt_update
  fi
  mkdir -p "$cache"
  download() { (cd "$cache" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1); }
  download || { updated="" && apt_update && download; } || {
    echo "ci-setup.sh: apt-get download busybox-static:arm64 failed" >&2
    exit 1
  }
fi

# --- browser tests (internal/journey) -----------------------------------------
# Debian's chromium, driven headless by chromedp; the tests fail in CI without it.
if ! command -v chromium >/dev/null; then
  echo "ci-setup.sh: installing chromium"
  apt_update
  apt-get install -y -qq chromium >/dev/null
fi
