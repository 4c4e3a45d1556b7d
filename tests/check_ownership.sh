#!/bin/bash
# Each table of an aggregate is written (INSERT, UPDATE, DELETE, TRUNCATE)
# only by its store module (README, Architecture). This fails, naming the
# file and the statement, when product code anywhere else writes one.
#   tests/check_ownership.sh [DIR...]   (default: src tools drivers)
set -u
cd "$(dirname "$0")/.."

# table  verbs  file   (verbs: a list of INSERT UPDATE DELETE TRUNCATE, or ALL)
owners='
requests            ALL     src/store_request.c
request_addresses   ALL     src/store_request.c
request_documents   ALL     src/store_request.c
request_events      ALL     src/store_request.c
notifications       ALL     src/store_request.c
notifications       UPDATE  src/notify.c
stock_batches       ALL     src/store_card.c
cards               ALL     src/store_card.c
production_attempts ALL     src/store_card.c
stations            ALL     src/store_station.c
dispatches          ALL     src/store_parcel.c
parcels             ALL     src/store_parcel.c
courier_events      ALL     src/store_parcel.c
audit_log           INSERT  src/audit.c
api_tokens          ALL     src/auth.c
couriers            ALL     src/auth.c
callbacks           ALL     src/callbacks.c
platform_secret     ALL     src/callbacks.c
cities              ALL     src/refdata.c
branches            ALL     src/refdata.c
holidays            ALL     src/refdata.c
'

allowed() { # table verb file
    local t v f
    while read -r t v f; do
        [ -z "$t" ] && continue
        [ "$t" = "$1" ] || continue
        [ "$f" = "$3" ] || continue
        if [ "$v" = ALL ] || [ "$v" = "$2" ]; then return 0; fi
    done <<<"$owners"
    return 1
}

owned_tables=$(awk 'NF { print $1 }' <<<"$owners" | sort -u | paste -sd'|')

# Prints one line per statement of the files that writes a table outside
# its module; found says how many, and the status whether there was one.
scan() {
    local file line stmt verb table
    found=0
    for file in "$@"; do
        while IFS=: read -r line stmt; do
            verb=$(awk '{ print toupper($1) }' <<<"$stmt")
            table=$(awk '{ print tolower($NF) }' <<<"$stmt")
            if ! allowed "$table" "$verb" "$file"; then
                echo "ownership: $file:$line writes $table ($verb); only its store module may" >&2
                found=$((found + 1))
            fi
        done < <(grep -noiE "(INSERT[[:space:]]+INTO|UPDATE|DELETE[[:space:]]+FROM|TRUNCATE([[:space:]]+TABLE)?)[[:space:]]+($owned_tables)\b" "$file" \
                 | sed -E 's/^([0-9]+):(INSERT|insert)[[:space:]]+(INTO|into)/\1:INSERT/; s/^([0-9]+):(DELETE|delete)[[:space:]]+(FROM|from)/\1:DELETE/; s/^([0-9]+):(TRUNCATE|truncate)[[:space:]]+(TABLE|table)/\1:TRUNCATE/')
    done
    [ "$found" -eq 0 ]
}

# Every table the migrations create has its module above.
unowned=$(sed -nE 's/.*CREATE[[:space:]]+TABLE[[:space:]]+(IF[[:space:]]+NOT[[:space:]]+EXISTS[[:space:]]+)?([a-z_]+).*/\2/Ip' sql/*.sql \
          | sort -u | grep -vxE "$owned_tables")
if [ -n "$unowned" ]; then
    echo "ownership: no module named for table(s): $unowned" >&2
    exit 1
fi

# The check must see each violation when there are some: a handler that
# spoils a card itself, one that writes a request's event, a tool that adds
# a courier and one that revokes a token with SQL of their own.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/src" "$probe/tools"
printf '%s\n' '"UPDATE cards SET state = '"'"'spoiled'"'"' WHERE serial = $1"' \
    '"insert into request_events (request_id) VALUES ($1)"' >"$probe/src/handler.c"
printf '%s\n' '"INSERT INTO couriers (name, token_id, secret_salt) VALUES ($1, $2, $3)"' \
    '"UPDATE api_tokens SET revoked_at = now() WHERE name = $1"' >"$probe/tools/ctl.c"
scan "$probe/src/handler.c" "$probe/tools/ctl.c" 2>/dev/null
if [ "$found" -ne 4 ]; then
    echo "ownership: the check saw $found of 4 tables written outside their module" >&2
    exit 1
fi

dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(src tools drivers)
mapfile -t files < <(find "${dirs[@]}" -name '*.c' -o -name '*.h' | sort)
scan "${files[@]}"
bad=$found
checked=${#files[@]}
if [ "$bad" -ne 0 ]; then
    echo "ownership: $bad statement(s) write a table outside its store module" >&2
    exit 1
fi
echo "ownership: $checked files, every aggregate table written only by its module"
