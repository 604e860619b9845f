# Sourced by each example's run.sh (`source "$(dirname "$0")/../start.sh"`): builds the engine,
# copies the example into a temporary directory (so the example in git stays as it is), and
# starts the bundled HubSpot sandbox there on a free port, stopped when the script exits.
#
# Sets `repo`, `engine`, `work`, `url`, and the functions `say`, `admin` and `show`; exports
# HUBSPOT_BASE_URL and HUBSPOT_TOKEN.
# The first run builds the engine (about 10 minutes on 2 cores); set CARGO_TARGET_DIR to reuse
# a build directory elsewhere.

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

# An API call as the portal's admin (`admin PATH FILE`): posts the JSON file, prints HubSpot's
# answer, fails on an error status.
admin() {
  curl -sS --fail-with-body -X POST "$url$1" \
    -H "Authorization: Bearer $HUBSPOT_TOKEN" -H 'Content-Type: application/json' \
    --data-binary "@$2"
  echo
}

# A sandbox test route's answer, cut to its first N characters (`show PATH N`).
show() {
  local body
  body=$(curl -sS "$url$1")
  printf '%.*s\n' "$2" "$body"
}
