#!/usr/bin/env bash
# The quickstart, end to end and offline: a model over the bundled CSV files is planned and
# applied to the bundled HubSpot-compatible sandbox; then the CSV changes and a second plan
# shows exactly that change, which is applied too.
#
#   ./examples/quickstart/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Building the engine (cargo build --bin engine)"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin engine
engine="$repo/target/debug/engine"

# Work on a copy, so the example in git stays as it is.
work=$(mktemp -d)
cp -r "$repo/examples/quickstart/." "$work/"
rm -rf "$work/.engine" "$work/run.sh"
cd "$work"

say "Starting the HubSpot sandbox on a free port"
"$engine" sandbox hubspot --port 0 --token sandbox-token 2> sandbox.log &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" sandbox.log 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' sandbox.log)
[ -n "$url" ] || { cat sandbox.log; echo "the sandbox did not start" >&2; exit 1; }
export HUBSPOT_BASE_URL="$url" HUBSPOT_TOKEN=sandbox-token
echo "sandbox: $url"

say "engine validate"
"$engine" validate

say "engine plan (first run: every active user is a new contact)"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan (nothing changed)"
"$engine" plan

say "The CSV changes: Ada's first name, Grace's phone, Alan leaves, Margaret joins"
cp data/users_v2.csv data/users.csv

say "engine plan --out plan.json (exactly that change, field by field)"
"$engine" plan --out plan.json

say "engine apply plan.json"
"$engine" apply plan.json

say "engine runs"
"$engine" runs

say "What the sandbox holds now"
curl -s "$url/_sandbox/records/contacts" | head -c 2000; echo

say "Done. The project copy and its state (.engine/) are in $work"
