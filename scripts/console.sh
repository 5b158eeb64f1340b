#!/usr/bin/env bash
# Builds the web console (web/ → web/dist). The console's tools (Vite 6, Vitest 3,
# playwright-core 1.61) run on Node.js 18.19 or newer, so Debian 12's own nodejs (18) does;
# scripts/fresh-debian-check.sh proves it on a fresh Debian 12. With an older or missing Node,
# `optional` (make run) skips the console with a warning — berth server then answers / with
# console_not_built — while `required` (make test) fails and says what to install.
# Usage: scripts/console.sh optional|required
set -euo pipefail
mode=${1:-required}
cd "$(dirname "$0")/../web"

version=$(node --version 2>/dev/null || echo none)
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a===18&&b>=19)?0:1)' 2>/dev/null; then
  msg="the console needs Node.js >= 18.19 (found: $version); install Debian's: apt-get install nodejs npm, then run make console"
  if [ "$mode" = optional ]; then
    echo "warning: $msg — starting without the console" >&2
    exit 0
  fi
  echo "error: $msg" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  msg="the console is built with npm, which is not installed: apt-get install npm"
  if [ "$mode" = optional ]; then
    echo "warning: $msg — starting without the console" >&2
    exit 0
  fi
  echo "error: $msg" >&2
  exit 1
fi
# npm ci only when the lockfile changed since the last install (npm writes
# node_modules/.package-lock.json).
if ! [ node_modules/.package-lock.json -nt package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
npm run build
