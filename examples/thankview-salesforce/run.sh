#!/usr/bin/env bash
# The ThankView + Salesforce integration guide, end to end and offline, against the bundled
# Salesforce sandbox:
#
#   1. as the org's admin: the ThankView__c custom object with the guide's fields (and a
#      Send_Id__c external id, so each campaign send is one record), two Contacts, a Lead;
#   2. engine plan and apply: one ThankView__c per campaign send, Contact__c or Lead__c set by
#      the matching cascade (Donor ID, then Contact by email, then Lead by email); Dee's row has
#      the guide's "Invalid Salesforce ID" (1004422) and an email Salesforce does not know, so
#      it is reported and not synced;
#   3. the engagement changes and Dee's row is fixed; the plan shows each change, and the apply
#      updates the same records (no duplicates) and syncs Dee's.
#
#   ./examples/thankview-salesforce/run.sh
#
# The first run builds the engine (about 10 minutes on 2 cores); later runs take seconds.
# (examples/start.sh starts the HubSpot sandbox, so this example starts its own.)
set -euo pipefail

example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Building the engine (cargo build --bin engine)"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin engine
engine="${CARGO_TARGET_DIR:-$repo/target}/debug/engine"

work=$(mktemp -d)
cp -r "$example/." "$work/"
rm -rf "$work/.engine" "$work/run.sh"
cd "$work"

say "Starting the Salesforce sandbox on a free port, with the ThankView__c object defined"
"$engine" sandbox salesforce --port 0 --objects setup/thankview_object.json 2> sandbox.log &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" sandbox.log 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' sandbox.log)
[ -n "$url" ] || { cat sandbox.log; echo "the sandbox did not start" >&2; exit 1; }
# The sandbox's connected app and refresh token (its defaults; `--help` lists the flags).
export SALESFORCE_LOGIN_URL="$url" \
  SALESFORCE_CONSUMER_KEY=sandbox-client-id \
  SALESFORCE_CONSUMER_SECRET=sandbox-client-secret \
  SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token
echo "sandbox: $url"

# A record created as the org's admin (`create OBJECT FILE`); prints Salesforce's answer.
create() {
  curl -sS --fail-with-body -X POST "$url/services/data/v62.0/sobjects/$1" \
    -H "Authorization: Bearer sandbox-token" -H 'Content-Type: application/json' \
    --data-binary "@$2"
  echo
}

say "Setting up the org as its admin would: Ada and Bob (Contacts), Cy (a Lead), Dee (a Contact)"
create Contact setup/ada_contact.json
create Contact setup/bob_contact.json
create Lead setup/cy_lead.json
create Contact setup/dee_contact.json

say "engine validate"
"$engine" validate

say "engine plan"
"$engine" plan

say "engine apply (Dee's row: invalid Donor ID and an unknown email, reported and not synced)"
"$engine" apply || true
"$engine" runs show 1 || true

say "What Salesforce holds: ThankView__c records"
curl -s "$url/_sandbox/records/ThankView__c" | cut -c1-3000; echo

say "The engagement changes; Dee's Donor ID is cleared and her email fixed"
cp data/engagement_v2.csv data/engagement.csv

say "engine plan"
"$engine" plan

say "engine apply"
"$engine" apply

say "engine plan --detailed-exitcode (0: nothing left to do)"
"$engine" plan --detailed-exitcode

say "What Salesforce holds now: the same records, updated, and Dee's"
curl -s "$url/_sandbox/records/ThankView__c" | cut -c1-4000; echo
