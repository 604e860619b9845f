#!/usr/bin/env bash
# Hightouch's HubSpot destination guide, end to end and offline, against the bundled sandbox:
#
#   1. as the portal's admin: three contact properties (a unique customer id, a `date`, a
#      `datetime`), a user-defined association label, a custom event, and a contact that
#      already holds Bob's customer id;
#   2. engine apply with the portal busier than the engine's budget (3 requests a second):
#      companies, contacts linked to their companies with labels, pricing-page views as
#      events, trial users as a static list; HubSpot's 429s are waited out, Bob's 409 is
#      reported for his row alone;
#   3. the data changes (Bob's id fixed, Ada leaves Globex and her trial, Di joins); the
#      plan shows each change, and the apply makes it.
#
#   ./examples/hightouch/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
set -euo pipefail

source "$(dirname "$0")/../start.sh"

say "Setting up the portal as its admin would"
for file in setup/properties/*.json; do admin /crm/v3/properties/contacts "$file" >/dev/null; done
admin /crm/v4/associations/contacts/companies/labels setup/billing_label.json >/dev/null
admin /events/v3/event-definitions setup/viewed_pricing.json >/dev/null
admin /crm/v3/objects/contacts setup/someone_else.json >/dev/null

say "The portal gets busy: 3 requests a second (as \`engine sandbox hubspot --rate-limit 3\` would)"
curl -sS -X POST "$url/_sandbox/faults" -H 'Content-Type: application/json' \
  -d '{"requests_per_second": 3}'; echo

say "engine validate"
"$engine" validate

say "engine plan"
"$engine" plan

say "engine apply (429s waited out; Bob's row refused with HubSpot's 409)"
"$engine" apply || true
"$engine" runs show 2 || true

say "The data changes (and the portal is quiet again)"
curl -sS -X POST "$url/_sandbox/faults" -H 'Content-Type: application/json' \
  -d '{"requests_per_second": null}' >/dev/null
for file in users memberships pricing_views; do cp "data/${file}_v2.csv" "data/$file.csv"; done

say "engine plan"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan --detailed-exitcode (0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "What the sandbox holds: contacts, their links to companies, events, lists"
curl -s "$url/_sandbox/records/contacts" | cut -c1-2500; echo
curl -s "$url/_sandbox/associations/contacts/companies"; echo
curl -s "$url/_sandbox/events" | cut -c1-1500; echo
curl -s "$url/_sandbox/lists"; echo
