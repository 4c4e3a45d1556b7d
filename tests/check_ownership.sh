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
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(src tools drivers)
bad=0
checked=0
while IFS= read -r file; do
    checked=$((checked + 1))
    # "VERB table" for every write statement in the file, with its line.
    while IFS=: read -r line stmt; do
        verb=$(awk '{ print toupper($1) }' <<<"$stmt")
        table=$(awk '{ print tolower($NF) }' <<<"$stmt")
        if ! allowed "$table" "$verb" "$file"; then
            echo "ownership: $file:$line writes $table ($verb); only its store module may" >&2
            bad=$((bad + 1))
        fi
    done < <(grep -noiE "(INSERT[[:space:]]+INTO|UPDATE|DELETE[[:space:]]+FROM|TRUNCATE([[:space:]]+TABLE)?)[[:space:]]+($owned_tables)\b" "$file" \
             | sed -E 's/^([0-9]+):(INSERT|insert)[[:space:]]+(INTO|into)/\1:INSERT/; s/^([0-9]+):(DELETE|delete)[[:space:]]+(FROM|from)/\1:DELETE/; s/^([0-9]+):(TRUNCATE|truncate)[[:space:]]+(TABLE|table)/\1:TRUNCATE/')
done < <(find "${dirs[@]}" -name '*.c' -o -name '*.h' | sort)

if [ "$bad" -ne 0 ]; then
    echo "ownership: $bad statement(s) write a table outside its store module" >&2
    exit 1
fi
echo "ownership: $checked files, every aggregate table written only by its module"
