#!/usr/bin/env bash
# ClientSuccess → HubSpot, end to end and offline, against the bundled HubSpot sandbox:
#
#   1. as a HubSpot admin would: create the `clientsuccess_status` enumeration on contacts and
#      a unique `cs_client_id` property on deals (setup/*.json);
#   2. clients become deals; contacts whose sync checkbox is checked become contacts, with
#      their status in HubSpot's exact case, linked to the deal of every client they belong to;
#   3. what a status in the wrong case looks like: the plan names the value to use;
#   4. data/contacts_v2.csv: one contact checked, one unchecked, statuses and memberships
#      changed; the plan shows exactly that, and the apply sends it.
#
#   ./examples/clientsuccess/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
# Set CARGO_TARGET_DIR to reuse a build directory elsewhere.
set -euo pipefail

source "$(dirname "$0")/../start.sh"


say "Admin setup: the clientsuccess_status enumeration on contacts"
admin /crm/v3/properties/contacts setup/clientsuccess_status_property.json

say "Admin setup: a unique cs_client_id property on deals"
admin /crm/v3/properties/deals setup/cs_client_id_property.json

say "engine validate"
"$engine" validate

say "What a status in ClientSuccess's own case does (the model without upper(...))"
cp models/contacts.yaml contacts.yaml.orig
sed -i.bak 's/upper(trim(status)) AS status/trim(status) AS status/' models/contacts.yaml
rm -f models/contacts.yaml.bak
"$engine" plan --sync contacts_to_hubspot
mv contacts.yaml.orig models/contacts.yaml

say "engine plan (clients as deals; checked contacts only, each linked to all its clients)"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan (nothing changed)"
"$engine" plan

say "The export changes: Priya checked, Tom unchecked, Maria joins Bluepeak, Kenji leaves it"
cp data/contacts_v2.csv data/contacts.csv

say "engine plan --out plan.json (exactly that change)"
"$engine" plan --out plan.json

say "engine apply plan.json"
"$engine" apply plan.json

say "engine plan --detailed-exitcode (0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "What the sandbox holds now: contacts, deals, and the links between them"
show /_sandbox/records/contacts 2000
show /_sandbox/records/deals 1500
show /_sandbox/associations/contacts/deals 1500

say "Done. The project copy and its state (.engine/) are in $work"
