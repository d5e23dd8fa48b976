#!/usr/bin/env bash
# Installs the Debian packages noeari needs, when any are missing.
# Usage: scripts/install-deps.sh [--run] [--browser] [--bench] [--cluster]
#   --run adds nginx for `make run`; --browser adds chromium for the browser tests; --bench adds wrk and nginx for `make bench`;
#   --cluster adds Galera, and rsync and ss for its state transfers, for the cluster targets.
set -euo pipefail

# libpango and a font for WeasyPrint's invoice PDFs.
packages=(mariadb-server mariadb-client libmariadb-dev pkg-config gcc libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)
for option in "$@"; do
    case "$option" in
        --run) packages+=(nginx) ;;
        --browser) packages+=(chromium) ;;
        --bench) packages+=(wrk nginx) ;;
        --cluster) packages+=(nginx galera-4 rsync iproute2) ;;
        *) echo "unknown option: $option" >&2; exit 2 ;;
    esac
done
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    packages+=(python3-venv)
fi
if ! python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' >/dev/null 2>&1; then
    packages+=(python3-dev)
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -q
# policy-rc.d stops the packages from starting the system-wide MariaDB or nginx; noeari runs its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
