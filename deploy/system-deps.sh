#!/bin/sh
# Debian packages the test suite needs. Installs them when run as root and missing;
# otherwise says what is missing. Kept short on purpose: each line is a real need.
set -e
# chromium + chromium-driver: the end-to-end tests drive the web UI in headless Chromium
# through Playwright (executable_path=/usr/bin/chromium; never `playwright install`);
# fonts-wqy-microhei renders Chinese in their screenshots.
PKGS="postgresql-client chromium chromium-driver fonts-wqy-microhei"
# npm fetches the web assets (htmx) at build time, see `make assets`.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages:$missing"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "missing Debian packages (install them as root):$missing" >&2
fi
