#!/usr/bin/env bash
# Installs the system libraries P-8 builds against and the PostgreSQL server the tests run against
# (Debian/Ubuntu), only when one is missing; with --browser also headless Chromium and its WebDriver, for the
# browser tests (scripts/test.sh).
set -euo pipefail
packages=(libzmq3-dev libsqlite3-dev libssl-dev openssl postgresql)
if [[ ${1:-} == --browser ]]; then
  packages+=(chromium chromium-driver)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
