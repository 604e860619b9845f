#!/usr/bin/env bash
# Thnks → HubSpot, end to end and offline, against the bundled HubSpot sandbox:
#
#   1. as a HubSpot admin would: create the `thnks` custom object, a unique `deal_ref`
#      property on deals, and the CRM's contacts and deals (setup/*.json);
#   2. the historical backfill: every transaction in data/thnks.csv becomes a `thnks` record,
#      linked to the recipient's contact and to their open deals;
#   3. an hourly run later: data/thnks_v2.csv moves three statuses along and adds a gift, and
#      data/deals_v2.csv closes a deal (its gifts keep their links); the plan shows exactly
#      that, and the apply sends it.
#
#   ./examples/thnks/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
# Set CARGO_TARGET_DIR to reuse a build directory elsewhere.
set -euo pipefail

source "$(dirname "$0")/../start.sh"


say "Admin setup: the thnks custom object (associated with contacts and deals)"
schema=$(admin /crm-object-schemas/v3/schemas setup/thnks_schema.json)
printf '%.300s…\n' "$schema"

say "Admin setup: a unique deal_ref property on deals, then the CRM's contacts and deals"
admin /crm/v3/properties/deals setup/deal_ref_property.json >/dev/null
admin /crm/v3/objects/contacts/batch/create setup/contacts.json >/dev/null
admin /crm/v3/objects/deals/batch/create setup/deals.json >/dev/null
echo "4 contacts, 6 deals (2 of them closed)"

say "engine validate"
"$engine" validate

say "engine plan (the historical backfill: every transaction is a new thnks record)"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan (nothing changed)"
"$engine" plan

say "An hour later: three statuses move on, a new gift is sent, and the Northwind renewal (NW-1) is won"
cp data/thnks_v2.csv data/thnks.csv
cp data/deals_v2.csv data/deals.csv

say "engine plan --out plan.json (exactly that change)"
"$engine" plan --out plan.json

say "engine apply plan.json"
"$engine" apply plan.json

say "engine plan --detailed-exitcode (0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "What the sandbox holds now: thnks records, and their links to contacts and deals"
show /_sandbox/records/p_thnks 2000
show /_sandbox/associations/p_thnks/contacts 1000
show /_sandbox/associations/p_thnks/deals 1000

say "Done. The project copy and its state (.engine/) are in $work"
