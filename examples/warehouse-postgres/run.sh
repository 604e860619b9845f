#!/usr/bin/env bash
# The quickstart with its data in PostgreSQL, end to end: the example's schema is seeded in
# the warehouse, a model joining two of its tables runs there and is planned and applied to the
# bundled HubSpot sandbox; then the warehouse's data changes (a company renamed, a user deleted,
# one signed up) and a second plan shows exactly that change, which is applied too.
#
#   ./examples/warehouse-postgres/run.sh
#   WAREHOUSE_URL=postgres://me@db.internal:5432/scratch ./examples/warehouse-postgres/run.sh
#
# Needs `psql` and a PostgreSQL where the URL's user may create a schema (`engine_example`,
# dropped and created again by setup/seed.sql); the default is the local server,
# postgres://root@127.0.0.1:5432/test. The engine's state is kept in the same server (STATE_URL,
# by default the warehouse's URL), in schema `engine_example_state`, which this script drops
# first so each run starts from an empty state against a fresh sandbox. The first run builds
# the engine (about 10 minutes on 2 cores); later runs take seconds.
set -euo pipefail

export WAREHOUSE_URL="${WAREHOUSE_URL:-postgres://root@127.0.0.1:5432/test}"
export STATE_URL="${STATE_URL:-$WAREHOUSE_URL}"

source "$(dirname "$0")/../start.sh"

# Runs a SQL file in the warehouse, stopping at its first error.
warehouse() {
  psql "$WAREHOUSE_URL" -X -q -v ON_ERROR_STOP=1 -f "$1"
}

say "Starting from an empty state: dropping schema engine_example_state (the engine creates it)"
psql "$STATE_URL" -X -q -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS engine_example_state CASCADE"

say "Seeding PostgreSQL: schema engine_example, tables companies and users (setup/seed.sql)"
warehouse setup/seed.sql
psql "$WAREHOUSE_URL" -X -c \
  "SELECT u.id, u.email, u.plan, u.lifetime_value, u.last_seen_at, u.active, c.name AS company
   FROM engine_example.users u JOIN engine_example.companies c ON c.id = u.company_id
   ORDER BY u.id"

say "engine validate (the model is prepared in PostgreSQL: tables, columns and types checked)"
"$engine" validate

say "engine plan (first run: every active user is a new contact)"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan (nothing changed)"
"$engine" plan

say "The warehouse changes: MIT is renamed, Alan is deleted, Margaret signs up (setup/change.sql)"
warehouse setup/change.sql

say "engine plan --out plan.json (exactly that change, field by field)"
"$engine" plan --out plan.json

say "engine apply plan.json"
"$engine" apply plan.json

say "engine plan --detailed-exitcode (exit code 0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "engine runs (run history is in PostgreSQL, schema engine_example_state)"
"$engine" runs

say "engine state check"
"$engine" state check

say "What the sandbox holds now"
curl -s "$url/_sandbox/records/contacts" | cut -c1-6000; echo

say "Done. The project copy (with its snapshot cache in .engine/) is in $work; the schemas engine_example and engine_example_state are left in place"
