#!/usr/bin/env bash
# Installs Debian's `prometheus` package (the server and promtool) when either is missing.
# `make test` and the observability tests call it: CI machines start without it. Needs root
# (CI runs as root) or sudo.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-prometheus: need root or sudo" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a concurrent session) may hold the lock for a while: wait instead of failing.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
# --no-install-recommends: the server and promtool, without the node exporter and friends.
# The package's own service is never started by us (and invoke-rc.d declines in containers).
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null 2>&1
