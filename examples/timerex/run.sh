#!/usr/bin/env bash
# TimeRex → HubSpot, end to end and offline, against the bundled HubSpot sandbox:
#
#   1. the portal already holds two companies and two contacts (setup/*.json, created as
#      someone else would have);
#   2. bookings from data/bookings.csv become companies (found by domain, else by name) and
#      contacts (found by email), created only when HubSpot has no such record: the ones it
#      has are left exactly as they are; only contacts created here are linked to a company;
#   3. data/bookings_v2.csv adds four bookings; the plan shows what is new, and the apply
#      creates it.
#
#   ./examples/timerex/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
# Set CARGO_TARGET_DIR to reuse a build directory elsewhere.
set -euo pipefail

source "$(dirname "$0")/../start.sh"


say "Before: the portal's own records (someone created them by hand)"
admin /crm/v3/objects/companies/batch/create setup/existing_companies.json >/dev/null
admin /crm/v3/objects/contacts/batch/create setup/existing_contacts.json >/dev/null
show /_sandbox/records/companies 3000
show /_sandbox/records/contacts 3000

say "engine validate"
"$engine" validate

say "engine plan (every booking's company and guest, as inserts)"
"$engine" plan

say "engine apply (existing companies and contacts are skipped, never touched)"
"$engine" apply

say "engine runs show 1 and 2 (which rows were skipped, and the record each one found)"
"$engine" runs show 1
"$engine" runs show 2

say "engine plan (nothing changed)"
"$engine" plan

say "Four more bookings: Ana again (new answers), Lea from Lumen Labs, Raj from a new company, a free-mail guest"
cp data/bookings_v2.csv data/bookings.csv

say "engine plan --out plan.json"
"$engine" plan --out plan.json

say "engine apply plan.json"
"$engine" apply plan.json

say "engine plan --detailed-exitcode (0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "What the sandbox holds now: companies, contacts, and the contacts' links to companies"
show /_sandbox/records/companies 2000
show /_sandbox/records/contacts 3000
show /_sandbox/associations/contacts/companies 1500

say "Done. The project copy and its state (.engine/) are in $work"
