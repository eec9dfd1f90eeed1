#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never `playwright install`, which downloads a browser):
# install it where apt can, else say in one line what is missing.
chromium="${LAB_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && [ -x "$chromium" ] && exit 0
fi
echo "The browser tests need Chromium at $chromium: install it (Debian or Ubuntu: sudo apt-get install -y chromium) or set LAB_CHROMIUM to its path." >&2
exit 1
