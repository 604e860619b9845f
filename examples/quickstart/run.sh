#!/usr/bin/env bash
# The quickstart, end to end and offline: a model over the bundled CSV files is planned and
# applied to the bundled HubSpot-compatible sandbox; then the CSV changes and a second plan
# shows exactly that change, which is applied too.
#
#   ./examples/quickstart/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
set -euo pipefail

source "$(dirname "$0")/../start.sh"

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
curl -s "$url/_sandbox/records/contacts" | cut -c1-2000; echo

say "Done. The project copy and its state (.engine/) are in $work"
