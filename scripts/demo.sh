#!/bin/bash
# make demo: the chain on a private database, with readable output.
# Runs inside a throw-away PostgreSQL cluster (pg_virtualenv); everything
# else lives in run/demo/ and is removed at the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROOT=$PWD

if [ -z "${PGHOST:-}" ]; then
    exec pg_virtualenv -t -o fsync=off env BUILD="$BUILD" "$0" "$@"
fi

RUN=$ROOT/run/demo
rm -rf "$RUN"
mkdir -p "$RUN/keys"
chmod 700 "$RUN/keys"
CONF=$RUN/cardd.conf
cat > "$CONF" <<CONF
port = 0
sql_dir = $ROOT/sql
master_key_file = $RUN/keys/master.key
keys_dir = $RUN/keys
log_level = info
CONF
export CARDD_CONFIG=$CONF
CARDD=$ROOT/$BUILD/cardd
CARDCTL=$ROOT/$BUILD/cardctl

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Database"
"$CARDD" migrate
"$CARDCTL" cities import ../shared/reference/cities.csv
"$CARDCTL" branches import ../shared/reference/branches.csv
"$CARDCTL" keys init >/dev/null
INTAKE=$("$CARDCTL" token create --role intake --name absher-approvals)
echo "tokens created (only their hashes are stored)"

step "Service"
"$CARDD" serve --port-file "$RUN/port" 2> "$RUN/cardd.log" &
CARDD_PID=$!
trap 'kill $CARDD_PID 2>/dev/null; wait $CARDD_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$RUN/port" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$RUN/port")"
echo "cardd listening at $BASE (log: run/demo/cardd.log)"

api() { # METHOD PATH TOKEN [BODY]
    local args=(-s -X "$1" "$BASE$2" -H 'Content-Type: application/json')
    [ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
    [ $# -ge 4 ] && args+=(--data-binary "$4")
    curl "${args[@]}"
}

request_body() { # NO NATIONAL_ID KIND REASON NAME_AR NAME_EN CITY
    local report=loss_report
    [ "$4" = damaged ] && report=damage_report
    jq -n --arg no "$1" --arg nid "$2" --arg kind "$3" --arg reason "$4" --arg ar "$5" \
          --arg en "$6" --arg city "$7" --arg report "$report" '{
        request_no: $no, kind: $kind, reason: $reason, national_id: $nid,
        holder: {name_ar: $ar, name_en: $en, birth_date: "1990-04-12", sex: "M", nationality: "SAU"},
        phone: "+966501234567",
        address: {short_address: "RRRD2929", building_no: "2929", street: "Al Takhassusi",
                  district: "Al Olaya", city: $city, postal_code: "12345", additional_no: "7788"},
        documents: [{type: "id_copy", sha256: ("a" * 64), uri: "docs://id"},
                    {type: $report, sha256: ("b" * 64), uri: "docs://report"}],
        terms_accepted_at: "2026-11-20T10:00:00Z", approved_at: "2026-11-21T08:00:00Z"}'
}

step "Intake: approved requests arrive from the approval system"
REQUESTS=(
  "RQ-2026-000123 1000000008 national_id lost محمد_عبدالله_القحطاني MOHAMMED_ABDULLAH_ALQAHTANI Riyadh"
  "RQ-2026-000124 1000000016 national_id damaged نورة_سعد_العتيبي NOURA_SAAD_ALOTAIBI Jeddah"
  "RQ-2026-000125 2000000006 family_record lost فهد_ناصر_الدوسري FAHAD_NASSER_ALDOSARI Dammam"
  "RQ-2026-000126 1000000024 family_record damaged سارة_علي_الشهري SARA_ALI_ALSHEHRI Abha"
)
for line in "${REQUESTS[@]}"; do
    read -r no nid kind reason ar en city <<<"$line"
    body=$(request_body "$no" "$nid" "$kind" "$reason" "${ar//_/ }" "${en//_/ }" "$city")
    api POST /v1/requests "$INTAKE" "$body" |
        jq -r --arg k "$kind" --arg r "$reason" '"\(.request_no)  \($k)/\($r)  -> \(.status), delivery expected \(.estimated_delivery.earliest) to \(.estimated_delivery.latest)"'
done
echo "re-sending RQ-2026-000123 unchanged:"
read -r no nid kind reason ar en city <<<"${REQUESTS[0]}"
api POST /v1/requests "$INTAKE" "$(request_body "$no" "$nid" "$kind" "$reason" "${ar//_/ }" "${en//_/ }" "$city")" |
    jq -c '{request_no, status}'
echo "a request with a wrong national ID check digit:"
api POST /v1/requests "$INTAKE" "$(request_body RQ-2026-000199 1000000009 national_id lost "اسم" NAME Riyadh)" |
    jq -c '{status, title, errors}'

step "Tracking: what the holder sees (POST /v1/track)"
for line in "${REQUESTS[@]}"; do
    read -r no nid _ <<<"$line"
    api POST /v1/track "" "{\"request_no\":\"$no\",\"national_id\":\"$nid\"}" | jq -r '
      "\(.request_no) (\(.kind), \(.reason)): \(.status_label.en) | \(.status_label.ar)",
      "    delivery to \(.delivery.address), expected \(.estimated_delivery.earliest)..\(.estimated_delivery.latest)",
      (.timeline[] | "    \(.at)  \(.label.en) | \(.label.ar)")'
done
echo "the same request with another national ID:"
api POST /v1/track "" '{"request_no":"RQ-2026-000123","national_id":"1000000016"}' | jq -c '{status, title}'

step "Done"
echo "cardd log: run/demo/cardd.log"
