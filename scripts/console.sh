#!/usr/bin/env bash
# Builds the web console (web/ → web/dist). Vite needs Node.js 20.19 or newer, which Debian 12
# does not ship (it has 18): with an older or missing Node, `optional` (make run) skips the
# console with a warning — berth server then answers / with console_not_built — while
# `required` (make test) fails and says what to install.
# Usage: scripts/console.sh optional|required
set -euo pipefail
mode=${1:-required}
cd "$(dirname "$0")/../web"

version=$(node --version 2>/dev/null || echo none)
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
  msg="the console needs Node.js >= 20.19 (found: $version); install a newer Node.js (e.g. from NodeSource) and run make console"
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
