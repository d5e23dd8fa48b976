#!/usr/bin/env bash
# Lighthouse (mobile, its default throttling) on the five pages issue 12 names, against a running
# `make run` (BASE, default http://127.0.0.1:5000). Prints each page's four scores.
# Usage: bench/lighthouse.sh [BASE]   Needs npm; uses Debian's chromium (CHROME_PATH).
set -euo pipefail
base=${1:-http://127.0.0.1:5000}
version=13.5.0
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
npm install --silent --prefix "$tools" "lighthouse@$version" >/dev/null
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
echo "Lighthouse $version, mobile, against $base"
for path in / /products /products/22 /producers/1 /login/customer; do
    "$tools/node_modules/.bin/lighthouse" "$base$path" --quiet --output=json --output-path="$tools/report.json" \
        --only-categories=performance,accessibility,best-practices,seo \
        --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run"
    python3 - "$path" "$tools/report.json" <<'PY'
import json, sys
categories = json.load(open(sys.argv[2]))["categories"]
print(f"{sys.argv[1]:<16}", "  ".join(f"{key} {round(value['score'] * 100)}" for key, value in categories.items()))
PY
done
