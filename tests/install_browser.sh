#!/usr/bin/env bash
# Debian's Chromium and a CJK font for the console's browser tests (tests/e2e/test_console_browser.py), when
# missing: `make test` runs this first. Playwright drives /usr/bin/chromium; it downloads no browser of its own.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
{ command -v fc-list >/dev/null && fc-list | grep -qi -e "wenquanyi" -e "noto sans cjk"; } || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} (Debian packages) for the console's browser tests"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq "${need[@]}" >/dev/null || { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null; }
