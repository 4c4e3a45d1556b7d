#!/bin/bash
# make demo: the whole chain — intake, production on two emulated stations,
# dispatch, courier events, the branch fallback, tracking, notifications and
# the status callbacks to the approval platform —
# on a private database, with readable output.
#
# The database is a throw-away cluster (pg_virtualenv); the devices are the
# real pcscd and libusb stacks with emulated cards and printers at their far
# end (TESTBENCH.md). Everything else lives in run/demo/, which is kept for a
# person to look at and replaced at the next run. Every process started here
# is stopped on exit, also on failure; a failure says which step it was.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROOT=$PWD

if [ -z "${PGHOST:-}" ]; then
    exec pg_virtualenv -t -o fsync=off env BUILD="$BUILD" "$0" "$@"
fi

RUN=$ROOT/run/demo
KEYS=$RUN/keys
LINE=$RUN/line            # the emulated production line: pcscd, cards, printers
REFERENCE=${CARDD_REFERENCE:-$ROOT/../shared/reference}   # cities.csv, branches.csv
CARDD=$ROOT/$BUILD/cardd
CARDCTL=$ROOT/$BUILD/cardctl
BATCH_NO=B-2026-0001
PKCS11_MODULE=${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}   # the HSM: SoftHSM2 here
TRANSPORT_KEY=0102030405060708
START_TIME=$(date +%s)

# ---------------------------------------------------------------------------
# Output, failure reporting and clean-up

if [ -t 1 ]; then BOLD=$'\033[1m'; DIM=$'\033[2m'; OFF=$'\033[0m'; else BOLD='' DIM='' OFF=''; fi
STEP="start"
FAILED_AT=""
step() { STEP=$*; printf '\n%s== %s%s\n' "$BOLD" "$*" "$OFF"; }
note() { printf '%s%s%s\n' "$DIM" "$*" "$OFF"; }
die()  { echo "demo: $*" >&2; exit 1; }

# Processes started in the background, in start order; stopped in reverse,
# so that cardd lets go of its devices before their emulators go away. Each
# runs in a process group of its own (set -m): a Ctrl-C reaches only this
# script, which then stops them in that order.
PIDS=()
NAMES=()
spawn() { # NAME STDOUT STDERR CMD... : starts CMD in the background
    local name=$1 out=$2 err=$3
    shift 3
    set -m
    "$@" >>"$out" 2>>"$err" &
    set +m
    PIDS+=("$!")
    NAMES+=("$name")
    LAST_PID=$!
}

# SIGTERM, then up to 5 s for it to end, then SIGKILL; always reaped.
stop_one() { # PID NAME
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo: $name (pid $pid) did not stop on SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_one "${PIDS[i]}" "${NAMES[i]}"
    done
    PIDS=()
    NAMES=()
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM ERR
    local i gone=""
    for ((i = 0; i < ${#PIDS[@]}; i++)); do
        kill -0 "${PIDS[i]}" 2>/dev/null || gone+=" ${NAMES[i]}"
    done
    stop_all
    if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
        echo "demo interrupted in step \"$STEP\"; every process it started is stopped" >&2
    elif [ "$rc" -ne 0 ]; then
        echo >&2
        echo "demo FAILED in step \"$STEP\" (exit status $rc)" >&2
        [ -n "$FAILED_AT" ] && echo "  failing command: $FAILED_AT" >&2
        [ -n "$gone" ] && echo "  had already exited:$gone" >&2
        echo "  logs: run/demo/*.log, run/demo/line/*.log" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'FAILED_AT="line $LINENO: $BASH_COMMAND"' ERR

# Polls CONDITION (a command) every 0.1 s until it succeeds or SECONDS pass.
# Bash ignores set -e inside a condition, so conditions die themselves
# when something they ask for fails (rather than looping until the time-out).
wait_for() { # SECONDS WHAT CONDITION...
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${limit}s waiting for $what"
        sleep 0.1
    done
}

tcp_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
has_line() { [ -s "$1" ] && grep -q "$2" "$1"; }

# ---------------------------------------------------------------------------
# HTTP

# api STATUS METHOD PATH TOKEN [BODY [HEADER]]: prints the answer's body; fails,
# showing the answer, when the HTTP status is not STATUS. A GET sends no body.
api() {
    local want=$1 method=$2 path=$3 token=$4 body=${5-} header=${6-} status out
    out=$(mktemp "$RUN/answer.XXXXXX")
    # A service that stops answering fails the step instead of hanging it.
    local args=(-sS --max-time 30 -o "$out" -w '%{http_code}' -X "$method" "$BASE$path")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$header" ] && args+=(-H "$header")
    [ "$method" != GET ] && [ $# -ge 5 ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    status=$(curl "${args[@]}") || { rm -f "$out"; echo "$method $path: no answer" >&2; return 1; }
    if [ "$status" != "$want" ]; then
        echo "$method $path: expected HTTP $want, got $status: $(cat "$out")" >&2
        rm -f "$out"
        return 1
    fi
    cat "$out"
    rm -f "$out"
}

# Courier calls are signed with the courier's secret: the 64-hex-digit
# string itself is the HMAC key (src/auth.c, signature_mac).
courier_sign() { # BODY (or "GET PATH" for a call without one) -> the X-Signature header value
    local t
    t=$(date +%s)
    printf 't=%s,v1=%s' "$t" \
        "$(printf '%s.%s' "$t" "$1" | openssl dgst -sha256 -hmac "$COURIER_SECRET" | awk '{print $NF}')"
}

# Courier events carry the time they happened, in whole seconds. Each event
# of a parcel is sent in a second of its own, after the second of the
# dispatch, and dated now: so the history reads in the order the events
# were sent, and no event is dated ahead of the service's clock.
declare -A PARCEL_CLOCK TN_CITY
EVENT_SEQ=0
clock_past() { [ "$(date +%s)" -gt "$1" ]; }
courier_event() { # TRACKING_NO CODE [REASON] -> one line saying what it did
    local tracking=$1 code=$2 reason=${3-} t body answer location last=${PARCEL_CLOCK[$1]:-0}
    [ "$last" -gt "$DISPATCH_EPOCH" ] || last=$DISPATCH_EPOCH
    wait_for 5 "the next second" clock_past "$last"
    t=$(date +%s)
    PARCEL_CLOCK[$tracking]=$t
    EVENT_SEQ=$((EVENT_SEQ + 1))
    location=${TN_CITY[$tracking]}
    [ "$code" = arrived_at_branch ] && location="branch $BRANCH_ID"
    body=$(jq -cn --arg id "$(printf 'fp-evt-%06d' "$EVENT_SEQ")" --arg tn "$tracking" --arg code "$code" \
        --arg at "$(date -u -d "@$t" +%FT%TZ)" --arg reason "$reason" \
        --arg location "$location" '{event_id: $id, tracking_no: $tn, code: $code, at: $at, location: $location}
         + (if $reason == "" then {} else {reason: $reason} end)')
    answer=$(api 200 POST /v1/courier/events "$COURIER_TOKEN" "$body" "X-Signature: $(courier_sign "$body")")
    jq -r --arg code "$code${reason:+ ($reason)}" \
        '"  \(.tracking_no)  \($code | .+ " " * (36 - length))-> \(.status), failed attempts \(.failed_attempts), action \(.action)"
         + (if .branch then ", branch \(.branch.branch_id)" else "" end)' <<<"$answer"
    LAST_EVENT_ANSWER=$answer
    LAST_EVENT_BODY=$body
}

# ---------------------------------------------------------------------------
# The holders.
# Fields: request_no national_id kind reason sex birth_date nationality city
# district lat lon phone name_ar name_en ("_" for spaces). Both kinds, both
# reasons; four citizens (national ID 1…) and a resident (2…).

HOLDERS=(
  "RQ-2026-000101 1084523172 national_id   lost    M 1990-04-12 SAU Riyadh Al_Olaya      24.6920 46.6850 +966501110001 محمد_عبدالله_القحطاني MOHAMMED_ABDULLAH_ALQAHTANI"
  "RQ-2026-000102 1047739204 national_id   damaged F 1995-09-03 SAU Jeddah Al_Rawdah     21.5621 39.1525 +966501110002 نورة_سعد_العتيبي      NOURA_SAAD_ALOTAIBI"
  "RQ-2026-000103 1033495613 family_record lost    M 1978-01-22 SAU Dammam Al_Faisaliyah 26.4207 50.0888 +966501110003 فهد_ناصر_الدوسري      FAHAD_NASSER_ALDOSARI"
  "RQ-2026-000104 1066209345 family_record damaged F 1986-06-15 SAU Riyadh Al_Malqa      24.8010 46.6210 +966501110004 سارة_علي_الشهري       SARA_ALI_ALSHEHRI"
  "RQ-2026-000105 2110547839 national_id   lost    M 1992-12-30 PAK Abha   Al_Mansak     18.2164 42.5053 +966501110005 عمران_علي_خان         IMRAN_ALI_KHAN"
)
# Their stories after production.
DELIVERED=(RQ-2026-000101 RQ-2026-000102 RQ-2026-000103)
REDIRECTED=RQ-2026-000104
CANCELLED=RQ-2026-000105

declare -A NID KIND REASON CITY NAME_EN NAME_AR TRACKING
ALL_NOS=()
for line in "${HOLDERS[@]}"; do
    read -r no nid kind reason _ _ _ city _ _ _ _ ar en <<<"$line"
    ALL_NOS+=("$no")
    NID[$no]=$nid KIND[$no]=$kind REASON[$no]=$reason CITY[$no]=$city
    NAME_AR[$no]=${ar//_/ } NAME_EN[$no]=${en//_/ }
done

# Approved an hour ago; fixed once, so that a request sent twice is the same body.
TERMS_ACCEPTED_AT=$(date -u -d '-1 day' +%FT%TZ)
APPROVED_AT=$(date -u -d '-1 hour' +%FT%TZ)
request_body() { # one line of HOLDERS -> the approval system's JSON
    local no nid kind reason sex birth nat city district lat lon phone ar en report=loss_report
    read -r no nid kind reason sex birth nat city district lat lon phone ar en <<<"$1"
    [ "$reason" = damaged ] && report=damage_report
    jq -cn --arg no "$no" --arg nid "$nid" --arg kind "$kind" --arg reason "$reason" \
        --arg ar "${ar//_/ }" --arg en "${en//_/ }" --arg city "$city" --arg district "${district//_/ }" --arg phone "$phone" \
        --argjson lat "$lat" --argjson lon "$lon" --arg report "$report" \
        --arg sex "$sex" --arg birth "$birth" --arg nat "$nat" --arg terms "$TERMS_ACCEPTED_AT" --arg approved "$APPROVED_AT" '{
        request_no: $no, kind: $kind, reason: $reason, national_id: $nid,
        holder: {name_ar: $ar, name_en: $en, birth_date: $birth, sex: $sex, nationality: $nat},
        phone: $phone,
        address: {building_no: "2929", street: "King Fahd Road", district: $district, city: $city,
                  postal_code: "12345", additional_no: "7788", lat: $lat, lon: $lon},
        documents: [{type: "id_copy", sha256: ("a" * 64), uri: "docs://id-copy"},
                    {type: $report, sha256: ("b" * 64), uri: "docs://report"}],
        terms_accepted_at: $terms, approved_at: $approved}'
}

request_status() { api 200 GET "/v1/requests/$1" "$OPERATOR" | jq -r .status; }
stations_json() { api 200 GET /v1/stations "$OPERATOR" || die "GET /v1/stations failed"; }

# ===========================================================================
step "Set-up: database, reference data, tokens, keys"

for tool in softhsm2-util pkcs11-tool openssl; do
    command -v "$tool" >/dev/null || die "$tool is missing: scripts/deps.sh installs it"
done
[ -r "$PKCS11_MODULE" ] || die "no PKCS#11 module at $PKCS11_MODULE (softhsm2; or set PKCS11_MODULE)"
for bin in cardd cardctl emu-card emu-printer emu-smsgw emu-platform; do
    [ -x "$ROOT/$BUILD/$bin" ] || die "$BUILD/$bin is missing: make all (make demo does)"
done
if ! [ -f "$REFERENCE/cities.csv" ] || ! [ -f "$REFERENCE/branches.csv" ]; then
    die "no reference data in $REFERENCE (set CARDD_REFERENCE to the folder of cities.csv and branches.csv)"
fi
rm -rf "$RUN"
mkdir -p "$RUN" "$LINE"
install -d -m 0700 "$KEYS" "$KEYS/transport"

# Two database roles (README, Security model): cardd_owner owns the schema
# and migrates; cardd_service, which cardd and cardctl connect as, reads and
# writes rows and nothing more. Their passwords live in a pgpass file that
# only this user can read, never in the configuration.
OWNER_PW=$(openssl rand -hex 16)
SERVICE_PW=$(openssl rand -hex 16)
(umask 077; printf '*:*:cardd:cardd_owner:%s\n*:*:cardd:cardd_service:%s\n' "$OWNER_PW" "$SERVICE_PW" > "$RUN/pgpass")
psql -q -v ON_ERROR_STOP=1 -d postgres >>"$RUN/setup.log" 2>&1 <<SQL || die "cannot create the database roles"
CREATE ROLE cardd_owner LOGIN PASSWORD '$OWNER_PW';
CREATE ROLE cardd_service LOGIN PASSWORD '$SERVICE_PW';
CREATE DATABASE cardd OWNER cardd_owner;
SQL
# From here on the superuser's password is not needed (libpq would prefer
# it to the pgpass file).
unset PGPASSWORD

cat > "$RUN/cardd.conf" <<CONF
port = 0
sql_dir = $ROOT/sql
master_key_file = $KEYS/master.key
keys_dir = $KEYS
log_level = info
database = dbname=cardd user=cardd_service passfile=$RUN/pgpass
migrate_database = dbname=cardd user=cardd_owner passfile=$RUN/pgpass
service_role = cardd_service
CONF
export CARDD_CONFIG=$RUN/cardd.conf

"$CARDD" migrate >>"$RUN/setup.log" 2>&1 || die "cardd migrate failed (see $RUN/setup.log)"
echo "database cardd: owner cardd_owner migrates; the service connects as cardd_service (rows only)"
"$CARDCTL" cities import "$REFERENCE/cities.csv" | sed "s|^$REFERENCE/||"
"$CARDCTL" branches import "$REFERENCE/branches.csv" | sed "s|^$REFERENCE/||"
"$CARDCTL" keys init >>"$RUN/setup.log"
INTAKE=$("$CARDCTL" token create --role intake --name absher-approvals)
OPERATOR=$("$CARDCTL" token create --role operator --name operator-huda)
# The second operator witnesses destructions: they countersign with their
# own token (X-Witness-Authorization), so one operator alone cannot do it.
WITNESS=$("$CARDCTL" token create --role operator --name operator-yousef)
echo "tokens: intake absher-approvals, operators operator-huda and operator-yousef"

# The courier's token and signing secret are printed once, here only.
courier=$("$CARDCTL" courier add fastpost)
COURIER_TOKEN=$(sed -n 's/^token: *//p' <<<"$courier")
COURIER_SECRET=$(sed -n 's/^secret: *//p' <<<"$courier")
if [ -z "$COURIER_TOKEN" ] || ! [[ $COURIER_SECRET =~ ^[0-9a-f]{64}$ ]]; then
    die "cardctl courier add printed no token and secret"
fi
echo "courier fastpost: token and signing secret received (shown once)"

# The approval platform's secret for signed status callbacks: printed once,
# here only, and handed to the platform (its stand-in reads it from a file).
PLATFORM_SECRET=$("$CARDCTL" platform secret | sed -n 's/^secret: *//p')
[[ $PLATFORM_SECRET =~ ^[0-9a-f]{64}$ ]] || die "cardctl platform secret printed no secret"
(umask 077; printf '%s\n' "$PLATFORM_SECRET" > "$RUN/platform.secret")
echo "approval platform: callback signing secret received (shown once)"

# The Document Signer's key lives in an HSM (SoftHSM2 here, a token of its
# own in run/demo/hsm): generated on the token, it never leaves it. Its
# certificate comes from the test CSCA through a request the token signs.
tests/make-test-pki.sh "$RUN/pki"
cp "$RUN/pki/csca.pem" "$KEYS/"
tests/make-test-token.sh "$RUN/hsm"
export SOFTHSM2_CONF=$RUN/hsm/softhsm2.conf
mv "$RUN/hsm/pkcs11.pin" "$KEYS/pkcs11.pin"
cat >> "$RUN/cardd.conf" <<CONF
signer = pkcs11
pkcs11_module = $PKCS11_MODULE
pkcs11_token = cardd-ds
pkcs11_key_label = ds
pkcs11_pin_file = $KEYS/pkcs11.pin
CONF
init_out=$("$CARDCTL" signer init)
printf '%s\n' "$init_out" | sed 's/^/  /'
key_id=$(awk '/^key / {print $2; exit}' <<<"$init_out")
"$CARDCTL" signer csr --key-id "$key_id" --subject "/C=SA/O=Demo Card Bureau/CN=Demo Document Signer 1" \
    "$RUN/ds.csr" >/dev/null
openssl x509 -req -in "$RUN/ds.csr" -CA "$RUN/pki/csca.pem" -CAkey "$RUN/pki/csca.key" -CAcreateserial \
    -days 365 -extfile "$RUN/pki/ds.ext" -out "$RUN/ds.pem" 2>/dev/null || die "the test CSCA did not sign ds.csr"
echo "  the test CSCA signed the token's request (run/demo/ds.csr -> run/demo/ds.pem)"
"$CARDCTL" signer install "$RUN/ds.pem" | sed 's/^/  /'
"$CARDCTL" signer status | sed -n '/^token/p; /^keys labelled/,$p' | sed 's/^/  /'
# The stock batch's transport key: the blank chips of the batch are locked with it.
(umask 077; printf '%s' "$TRANSPORT_KEY" > "$KEYS/transport/$BATCH_NO.key")
echo "keys in run/demo/keys: master key, the token's PIN, the DS certificate (ds.pem) under csca.pem, transport key of $BATCH_NO"

# ===========================================================================
step "Production line: private pcscd, two emulated cards, two emulated printers"

# pcscd: one vpcd entry gives readers "Station Reader 00 00" (port P) and
# "00 01" (P+1). Its socket lives in a tmpfs of its own mount namespace, so
# it cannot clash with another pcscd; clients reach it through /proc/PID/root.
# The port pair is taken below the tests' ports (20000 up) and the kernel's
# ephemeral ports; another program may still take it first, so a pcscd whose
# readers do not come up is stopped and the next pair is tried.
port_free() { [ -z "$(ss -Htan "( sport = :$1 or sport = :$(($1 + 1)) )" 2>/dev/null)" ]; }
next_port() { VPCD_PORT=$(((VPCD_PORT + 10 - 10000) % 9900 + 10000)); }  # stays in 10000..19899
pcscd_ready() {
    kill -0 "$PCSCD_PID" 2>/dev/null && [ -S "$PCSC_SOCK" ] &&
        tcp_listening "$VPCD_PORT" && tcp_listening $((VPCD_PORT + 1))
}
pcscd_failed() { ! kill -0 "$PCSCD_PID" 2>/dev/null || grep -q 'init failed' "$LINE/pcscd.log"; }
start_pcscd() {
    local tries=0 deadline
    VPCD_PORT=$((10000 + ($$ % 990) * 10))
    mkdir -p "$LINE/pcsc"
    while [ $((tries += 1)) -le 5 ]; do
        until port_free "$VPCD_PORT"; do next_port; done
        printf 'FRIENDLYNAME "Station Reader"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n' \
            "$VPCD_PORT" /usr/lib/pcsc/drivers/serial/libifdvpcd.so "$VPCD_PORT" > "$LINE/pcsc/vpcd"
        : > "$LINE/pcscd.log"
        # shellcheck disable=SC2016  # $0 is expanded by that sh: the config folder
        spawn pcscd "$LINE/pcscd.log" "$LINE/pcscd.log" \
            unshare -m --propagation private \
            sh -c 'mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && exec pcscd -f -c "$0"' "$LINE/pcsc"
        PCSCD_PID=$LAST_PID
        PCSC_SOCK=/proc/$PCSCD_PID/root/run/pcscd/pcscd.comm
        deadline=$(($(date +%s) + 10))
        while ! pcscd_ready; do
            if pcscd_failed || [ "$(date +%s)" -ge "$deadline" ]; then
                note "pcscd could not open its readers on ports $VPCD_PORT/$((VPCD_PORT + 1)); trying other ports"
                cp "$LINE/pcscd.log" "$LINE/pcscd-try$tries.log"
                stop_one "$PCSCD_PID" pcscd
                unset 'PIDS[-1]' 'NAMES[-1]'
                next_port
                continue 2
            fi
            sleep 0.1
        done
        return 0
    done
    die "pcscd did not come up (run/demo/line/pcscd*.log)"
}
start_pcscd
echo "pcscd (pid $PCSCD_PID): readers \"Station Reader 00 00\" and \"00 01\" on ports $VPCD_PORT and $((VPCD_PORT + 1))"

# One emulated card slot per reader; the printer inserts and removes cards.
for k in 1 2; do
    mkdir -p "$LINE/chips$k"
    spawn "emu-card $k" "$LINE/card$k.log" "$LINE/card$k.log" \
        "$ROOT/$BUILD/emu-card" --vpcd-port $((VPCD_PORT + k - 1)) --control "$LINE/card$k.sock" \
        --outdir "$LINE/chips$k"
    wait_for 10 "emu-card $k" test -S "$LINE/card$k.sock"
done

# Both printers in one emu-printer process: cardd has one UMOCKDEV_DIR.
# The options after each --serial are that station's.
station_args=()
for k in 1 2; do
    station_args+=(--serial "EVO-000$k" --hopper "$RUN/hopper/st$k" --control "$LINE/printer$k.sock"
                   --card-control "$LINE/card$k.sock" --transport-key "$TRANSPORT_KEY"
                   --chip-dir "$LINE/chips$k" --cycle-ms 1000)
done
spawn emu-printer "$LINE/printer.out" "$LINE/printer.log" "$ROOT/$BUILD/emu-printer" "${station_args[@]}"
wait_for 10 "emu-printer to print UMOCKDEV_DIR" has_line "$LINE/printer.out" '^UMOCKDEV_DIR='
UMOCKDEV=$(sed -n 's/^UMOCKDEV_DIR=//p' "$LINE/printer.out")
echo "emu-printer: printers EVO-0001 and EVO-0002 on emulated USB ($UMOCKDEV)"

# The SMS gateway stand-in records each notification it accepts, one JSON a line.
SMS_LOG=$RUN/sms.jsonl
spawn emu-smsgw "$RUN/smsgw.log" "$RUN/smsgw.log" \
    "$ROOT/$BUILD/emu-smsgw" --out "$SMS_LOG" --port-file "$RUN/smsgw.port"
wait_for 10 "emu-smsgw" test -s "$RUN/smsgw.port"
echo "SMS gateway stand-in on port $(cat "$RUN/smsgw.port"), recording to run/demo/sms.jsonl"

# The approval platform's stand-in checks each callback's signature and
# records every call, one JSON a line.
PLATFORM_LOG=$RUN/platform.jsonl
mkdir -p "$RUN/platform-control"
spawn emu-platform "$RUN/platform.log" "$RUN/platform.log" \
    "$ROOT/$BUILD/emu-platform" --out "$PLATFORM_LOG" --secret-file "$RUN/platform.secret" \
    --control "$RUN/platform-control" --port-file "$RUN/platform.port"
wait_for 10 "emu-platform" test -s "$RUN/platform.port"
echo "approval platform stand-in on port $(cat "$RUN/platform.port"), recording to run/demo/platform.jsonl"

# ===========================================================================
step "Service: cardd with two stations"

cat >> "$RUN/cardd.conf" <<CONF
sms_gateway_url = http://127.0.0.1:$(cat "$RUN/smsgw.port")/sms
platform_callback_url = http://127.0.0.1:$(cat "$RUN/platform.port")/callbacks
station = st1 evolis EVO-0001 Station Reader 00 00
station = st2 evolis EVO-0002 Station Reader 00 01
CONF
# Only cardd sees the emulated USB bus and the private pcscd.
LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=$UMOCKDEV PCSCLITE_CSOCK_NAME=$PCSC_SOCK \
    spawn cardd "$RUN/cardd.log" "$RUN/cardd.log" "$CARDD" serve --port-file "$RUN/cardd.port"
CARDD_PID=$LAST_PID
wait_for 10 "cardd to listen" test -s "$RUN/cardd.port"
BASE="http://127.0.0.1:$(cat "$RUN/cardd.port")"
cardd_ready() { kill -0 "$CARDD_PID" 2>/dev/null || die "cardd exited (run/demo/cardd.log)"; curl -sf "$BASE/readyz" >/dev/null; }
wait_for 10 "cardd to be ready" cardd_ready
stations_idle() {
    local stations
    stations=$(stations_json) || exit 1
    [ "$(jq '[.stations[] | select(.state == "idle")] | length' <<<"$stations")" = 2 ]
}
wait_for 20 "both stations to find their printer and reader" stations_idle
echo "cardd (pid $CARDD_PID) at $BASE; log run/demo/cardd.log"
api 200 GET /v1/stations "$OPERATOR" |
    jq -r '.stations[] | "  \(.id): printer \(.printer.driver) \(.printer.serial), reader \"\(.reader)\": \(.state)"'

# ===========================================================================
step "Intake: approved requests arrive from the approval system"

for line in "${HOLDERS[@]}"; do
    read -r no _ kind reason _ _ _ city _ <<<"$line"
    api 201 POST /v1/requests "$INTAKE" "$(request_body "$line")" |
        jq -r --arg k "$kind/$reason" --arg c "$city" --arg ar "${NAME_AR[$no]}" \
            '"  \(.request_no)  \($k | .+ " " * (22 - length)) \($c | .+ " " * (7 - length)) -> \(.status), expected \(.estimated_delivery.earliest) to \(.estimated_delivery.latest)   \($ar)"'
done
echo "the same request sent again is answered with what is stored:"
api 200 POST /v1/requests "$INTAKE" "$(request_body "${HOLDERS[0]}")" | jq -c '{request_no, status}' | sed 's/^/  /'
echo "a request whose national ID fails the check digit is refused:"
api 422 POST /v1/requests "$INTAKE" \
    "$(request_body "RQ-2026-000199 1084523173 national_id lost M 1990-01-01 SAU Riyadh Al_Olaya 24.7 46.7 +966501110009 اسم NAME")" |
    jq -c '{status, title, errors}' | sed 's/^/  /'
echo "production queue (no blank cards in stock yet):"
api 200 GET /v1/production/queue "$OPERATOR" | jq -r '.items[] | "  \(.request_no) \(.kind)"' 

# ===========================================================================
step "Stock: a batch of blank cards is received; the stations start"

api 201 POST /v1/stock/batches "$OPERATOR" "{\"batch_no\":\"$BATCH_NO\",\"first_serial\":\"A00000001\",\"count\":20}" |
    jq -r '"  batch \(.batch_no): \(.first_serial) .. \(.last_serial)"'

# Progress: one line whenever a station or the count of cards made changes.
# The stations are asked first, so a request may be a step ahead of them.
production_progress() {
    local stations produced=0 no line ms st
    stations=$(stations_json) || exit 1
    line=$(jq -r '.stations[] | select(.state == "error" or .state == "offline") | "\(.id) \(.state): \(.reason)"' <<<"$stations")
    [ -z "$line" ] || die "a station stopped in error: $line"
    for no in "${ALL_NOS[@]}"; do
        st=$(request_status "$no") || die "GET /v1/requests/$no failed"
        [ "$st" = produced ] && produced=$((produced + 1))
    done
    line=$(jq -r '[.stations[] | "\(.id) " + (if .job then "busy: \(.job.request_no) on card \(.job.card_serial)"
                                             else .state end) | .+ " " * (44 - length)] | join("")' <<<"$stations")
    line+="cards made: $produced of ${#ALL_NOS[@]}"
    if [ "$line" != "${LAST_PROGRESS-}" ]; then
        ms=$(( (${EPOCHREALTIME/./} - PRODUCTION_START) / 1000 ))
        printf '  [%3d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$line"
        LAST_PROGRESS=$line
    fi
    [ "$produced" = "${#ALL_NOS[@]}" ]
}
PRODUCTION_START=${EPOCHREALTIME/./}
wait_for 120 "every card to be produced" production_progress
echo "the cards, as the service recorded them:"
for no in "${ALL_NOS[@]}"; do
    api 200 GET "/v1/requests/$no" "$OPERATOR" |
        jq -r '.cards[] | "  \(.request_no // "'"$no"'")  card \(.card_serial // .serial) on \(.station_id // .station): \(.outcome)"'
done
# Keep each request's whole record for a person to look at.
mkdir -p "$RUN/requests"

# ===========================================================================
step "Cancellation: a request withdrawn after its card was made"

api 200 POST "/v1/requests/$CANCELLED/cancel" "$INTAKE" '{"reason":"applicant found the lost card"}' |
    jq -r '"  \(.request_no) -> \(.status)"'
VOIDED_CARD=$(api 200 GET "/v1/requests/$CANCELLED" "$OPERATOR" | jq -r '.cards[-1].card_serial')
echo "  its card $VOIDED_CARD was voided (spoiled); a spoiled card is destroyed under dual control:"
api 403 POST "/v1/cards/$VOIDED_CARD/destroy" "$OPERATOR" '{"witness":"operator-yousef"}' |
    jq -r '"  alone: \(.status) \(.detail)"'
api 200 POST "/v1/cards/$VOIDED_CARD/destroy" "$OPERATOR" '{"witness":"operator-yousef"}' \
    "X-Witness-Authorization: Bearer $WITNESS" |
    jq -r '"  \(.card_serial) -> \(.state) by \(.destroyed_by), witnessed by \(.witness)"'
echo "  blank card stock (received = used + spoiled + destroyed + available):"
api 200 GET /v1/stock "$OPERATOR" | jq -r '.batches[] |
    "  batch \(.batch_no): received \(.received) = used \(.used) + spoiled \(.spoiled) + destroyed \(.destroyed) + in production \(.in_production) + available \(.available)"'

# ===========================================================================
step "Dispatch: the produced cards are handed to the courier fastpost"

echo "the cancelled request cannot be dispatched:"
api 409 POST /v1/dispatches "$OPERATOR" "{\"courier\":\"fastpost\",\"request_nos\":[\"$CANCELLED\"]}" |
    jq -c '{status, title, requests}' | sed 's/^/  /'
TO_DISPATCH=("${DELIVERED[@]}" "$REDIRECTED")
DISPATCH_EPOCH=$(date +%s)
dispatch=$(api 201 POST /v1/dispatches "$OPERATOR" \
    "$(jq -cn '{courier: "fastpost", request_nos: $ARGS.positional}' --args "${TO_DISPATCH[@]}")")
while read -r no tn; do
    TRACKING[$no]=$tn
    TN_CITY[$tn]=${CITY[$no]}
    echo "  $no -> tracking number $tn"
done < <(jq -r '.items[] | "\(.request_no) \(.tracking_no)"' <<<"$dispatch")
[ "${#TRACKING[@]}" = "${#TO_DISPATCH[@]}" ] || die "the dispatch did not answer a tracking number for each card"

# ===========================================================================
step "Courier: fastpost reports its events (each call signed with its secret)"

echo "${DELIVERED[0]}: delivered at the first attempt"
for code in picked_up in_transit out_for_delivery delivered; do
    courier_event "${TRACKING[${DELIVERED[0]}]}" "$code"
done
echo "${DELIVERED[1]}: delivered at the first attempt"
for code in picked_up out_for_delivery delivered; do
    courier_event "${TRACKING[${DELIVERED[1]}]}" "$code"
done
echo "${DELIVERED[2]}: no one home once, delivered at the second attempt"
courier_event "${TRACKING[${DELIVERED[2]}]}" picked_up
courier_event "${TRACKING[${DELIVERED[2]}]}" out_for_delivery
courier_event "${TRACKING[${DELIVERED[2]}]}" delivery_failed no_one_home
courier_event "${TRACKING[${DELIVERED[2]}]}" out_for_delivery
courier_event "${TRACKING[${DELIVERED[2]}]}" delivered

tn=${TRACKING[$REDIRECTED]}
echo "$REDIRECTED: two failed attempts, so the card goes to the nearest branch"
courier_event "$tn" picked_up
courier_event "$tn" out_for_delivery
courier_event "$tn" delivery_failed no_one_home
courier_event "$tn" out_for_delivery
courier_event "$tn" delivery_failed address_not_found
[ "$(jq -r .action <<<"$LAST_EVENT_ANSWER")" = return_to_branch ] ||
    die "after two failed attempts the courier was not told to return the card to a branch"
BRANCH_ID=$(jq -r .branch.branch_id <<<"$LAST_EVENT_ANSWER")
echo "  the courier's system asks what to do with the parcel (GET /v1/courier/parcels/$tn):"
api 200 GET "/v1/courier/parcels/$tn" "$COURIER_TOKEN" "" "X-Signature: $(courier_sign "GET /v1/courier/parcels/$tn")" |
    jq -r '"    \(.action): \(.branch.branch_id), \(.branch.name.en) | \(.branch.name.ar), \(.branch.city)"'
courier_event "$tn" arrived_at_branch
echo "  a repeated event (same event_id) changes nothing:"
api 200 POST /v1/courier/events "$COURIER_TOKEN" "$LAST_EVENT_BODY" "X-Signature: $(courier_sign "$LAST_EVENT_BODY")" |
    jq -r '"    \(.event_id): \(.result), status still \(.status)"'

# ===========================================================================
step "Branch: the holder of $REDIRECTED collects the card at $BRANCH_ID"

# A branch token belongs to one branch: the desk's token works there only.
BRANCH=$("$CARDCTL" token create --role branch --branch "$BRANCH_ID" --name "desk1-$BRANCH_ID")
echo "token desk1-$BRANCH_ID for branch $BRANCH_ID only:"
api 403 POST "/v1/branches/NOT-$BRANCH_ID/handover" "$BRANCH" \
    "{\"request_no\":\"$REDIRECTED\",\"national_id\":\"${NID[$REDIRECTED]}\"}" |
    jq -c '{status, title, detail}' | sed 's/^/  another branch: /'

echo "with someone else's national ID the branch learns nothing:"
api 404 POST "/v1/branches/$BRANCH_ID/handover" "$BRANCH" \
    "{\"request_no\":\"$REDIRECTED\",\"national_id\":\"${NID[${DELIVERED[0]}]}\"}" |
    jq -c '{status, title}' | sed 's/^/  /'
echo "with the holder's own national ID:"
api 200 POST "/v1/branches/$BRANCH_ID/handover" "$BRANCH" \
    "{\"request_no\":\"$REDIRECTED\",\"national_id\":\"${NID[$REDIRECTED]}\"}" |
    jq -r '"  \(.request_no) -> \(.status) at \(.branch_id)"'

for no in "${ALL_NOS[@]}"; do
    api 200 GET "/v1/requests/$no" "$OPERATOR" | jq . > "$RUN/requests/$no.json"
done

# ===========================================================================
step "Tracking: what each holder sees (POST /v1/track), the SMS they received, the platform's callbacks"

declare -A TRACK
for no in "${ALL_NOS[@]}"; do
    TRACK[$no]=$(api 200 POST /v1/track "" "{\"request_no\":\"$no\",\"national_id\":\"${NID[$no]}\"}")
done

# Every status change wrote a notification in the same transaction; the
# worker sends them on its own, so wait until the gateway has recorded as
# many for each request as its record has status changes (the tracking
# timeline also lists courier scans that change nothing).
all_notified() {
    local no got
    [ -s "$SMS_LOG" ] || return 1
    kill -0 "$CARDD_PID" 2>/dev/null || die "cardd exited (run/demo/cardd.log)"
    for no in "${ALL_NOS[@]}"; do
        got=$(jq -s --arg no "$no" '[.[] | select(.request_no == $no)] | length' "$SMS_LOG") ||
            die "run/demo/sms.jsonl does not parse"
        [ "$got" -ge "$(jq '[.events[] | select(.status != null)] | length' "$RUN/requests/$no.json")" ] ||
            return 1
    done
}
wait_for 60 "the SMS gateway to receive every notification" all_notified
# Likewise a callback to the approval platform for each status change.
all_called_back() {
    kill -0 "$CARDD_PID" 2>/dev/null || die "cardd exited (run/demo/cardd.log)"
    [ "$("$CARDCTL" callbacks)" = "no callbacks waiting or failed" ]
}
wait_for 60 "the approval platform to acknowledge every callback" all_called_back

for no in "${ALL_NOS[@]}"; do
    printf '\n%s%s%s  %s / %s  %s  %s\n' "$BOLD" "$no" "$OFF" "${KIND[$no]}" "${REASON[$no]}" \
        "${NAME_AR[$no]}" "${NAME_EN[$no]}"
    jq -r '
      "  now:      \(.status_label.en) | \(.status_label.ar)   (since \(.updated_at))",
      "  delivery: \(.delivery.method), \(.delivery.attempts) delivery attempt(s), \(.delivery.address)",
      (if .delivery.branch then
         "  branch:   \(.delivery.branch.branch_id)  \(.delivery.branch.name.en) | \(.delivery.branch.name.ar)",
         "  collect by \(.delivery.collect_by)"
       else empty end),
      "  timeline:",
      (.timeline[] | "    \(.at)  \(.label.en | .+ " " * (36 - length)) \(.label.ar)")' <<<"${TRACK[$no]}"
    echo "  SMS received at $(jq -r --arg no "$no" 'select(.request_no == $no) | .phone' "$SMS_LOG" | head -1):"
    jq -r --arg no "$no" 'select(.request_no == $no) | "    \(.text.en)\n    \(.text.ar)"' "$SMS_LOG"
    # What the platform acknowledged (a repeat, if any, has the same callback_id).
    echo "  callbacks the approval platform received (signature checked by the platform):"
    jq -rs --arg no "$no" '
      map(select(.answer == 200) | {signature} + (.raw | fromjson)) |
      map(select(.request_no == $no)) | unique_by(.callback_id) | sort_by(.sequence)[] |
      "    #\(.sequence)  \(.at)  \(.status | .+ " " * (21 - length))  \(.delivery.method)" +
      (if .delivery.branch then " \(.delivery.branch.branch_id)" else "" end) +
      (if .delivery.collect_by then ", collect by \(.delivery.collect_by)" else "" end) +
      "  (signature \(.signature))"' "$PLATFORM_LOG"
done
echo
echo "a look-up with the right request number but another national ID:"
api 404 POST /v1/track "" "{\"request_no\":\"${ALL_NOS[0]}\",\"national_id\":\"${NID[${ALL_NOS[1]}]}\"}" |
    jq -c '{status, title}' | sed 's/^/  /'

# ===========================================================================
step "Output hopper: what the stations printed and wrote to the chips"

# The emulated printer numbers the cards of each station 1, 2, ... in the
# order it took them; the service takes blank cards in serial order, so the
# n-th serial used on a station is card n of that station's hopper.
declare -A HOPPER
for st in st1 st2; do
    n=0
    while read -r _serial no; do
        n=$((n + 1))
        HOPPER[$no]=$RUN/hopper/$st/$n
    done < <(jq -r --arg st "$st" '.request_no as $no | .cards[] | select(.station == $st) | "\(.card_serial) \($no)"' \
                 "$RUN"/requests/*.json | sort)
done
for no in "${ALL_NOS[@]}"; do
    h=${HOPPER[$no]}
    [ -f "$h-front.png" ] || die "no face in the hopper for $no ($h-front.png)"
    echo "  $no  ${KIND[$no]}$([ "$no" = "$CANCELLED" ] && echo "  (voided when the request was cancelled, then destroyed)")"
    echo "      face: ${h#"$ROOT/"}-front.png"
    if [ "${KIND[$no]}" = national_id ]; then
        # DG11 carries the national ID: a check that the mapping is right.
        grep -aq "${NID[$no]}" "$h-chip/010B.bin" || die "the chip in $h-chip does not carry ${NID[$no]}"
        echo "      chip: ${h#"$ROOT/"}-chip/  ($(cd "$h-chip" && echo *.bin))"
    else
        echo "      chip: none (a family record is printed, not encoded)"
    fi
done

# ===========================================================================
step "Chip check: the security object of ${ALL_NOS[0]}'s card, verified with openssl"

chip=${HOPPER[${ALL_NOS[0]}]}-chip
# EF.SOD is tag 77 around a DER CMS SignedData: skip the tag and its length.
sod_header() {
    local b
    read -r -a b < <(od -An -tx1 -N2 "$1")
    [ "${b[0]}" = 77 ] || die "$1 does not start with tag 77"
    case ${b[1]} in
        8[1-4]) echo $((2 + 0x${b[1]} - 0x80)) ;;
        *) echo 2 ;;
    esac
}
tail -c +$(($(sod_header "$chip/011D.bin") + 1)) "$chip/011D.bin" > "$RUN/sod.der"
openssl cms -verify -inform DER -in "$RUN/sod.der" -CAfile "$KEYS/csca.pem" -out "$RUN/lds-security-object.der" \
    2>"$RUN/cms-verify.log" || die "the SOD does not verify against csca.pem (run/demo/cms-verify.log)"
echo "  signature: $(cat "$RUN/cms-verify.log"), signed by $(openssl cms -cmsout -print -inform DER -in "$RUN/sod.der" |
    sed -n 's/^ *subject: *//p' | head -1)"
echo "  under an unrelated CA it is refused: $(openssl cms -verify -inform DER -in "$RUN/sod.der" \
    -CAfile "$RUN/pki/other.pem" -out /dev/null 2>&1 | head -1)"
# The signed LDS security object holds a SHA-256 per data group: they must be the files' hashes.
hashes=$(openssl asn1parse -inform DER -in "$RUN/lds-security-object.der" | tr 'A-F' 'a-f')
for dg in 0101:DG1 010B:DG11; do
    h=$(sha256sum "$chip/${dg%%:*}.bin" | cut -d' ' -f1)
    grep -q "$h" <<<"$hashes" || die "the hash of ${dg#*:} is not the one signed in the SOD"
    echo "  ${dg#*:} (${dg%%:*}.bin) sha256 $h: matches the signed hash"
done
echo "  DG1 machine-readable zone:"
tail -c 90 "$chip/0101.bin" | fold -w 30 | sed 's/^/      /'
echo

# ===========================================================================
step "Done in $(($(date +%s) - START_TIME)) s"
echo "run/demo/ keeps everything to look at:"
echo "  cardd.log                  the service's log (each line tagged with its request id)"
echo "  sms.jsonl                  every notification the SMS gateway accepted"
echo "  platform.jsonl             every call the approval platform got: answer, signature check, raw body"
echo "  requests/*.json            each request's whole record (GET /v1/requests/{no})"
echo "  hopper/st1, hopper/st2     faces (PNG) and chip files of the cards made"
echo "  line/                      pcscd, emu-card and emu-printer logs"

# ===========================================================================
step "The pages: open them in a browser"
echo "  citizen tracking (Arabic first, English one click away):  $BASE/"
echo "      e.g. request ${DELIVERED[0]} with national ID ${NID[${DELIVERED[0]}]}"
echo "  production floor dashboard:                               $BASE/ops/"
echo "      operator token (kept for the browser tab only):       $OPERATOR"
if [ "${KEEP:-0}" = 1 ]; then
    echo
    echo "KEEP=1: the service and the production line stay up until Ctrl-C"
    trap 'exit 0' INT
    while kill -0 "$CARDD_PID" 2>/dev/null; do
        sleep 1
    done
    die "cardd exited (run/demo/cardd.log)"
else
    echo "  (make demo KEEP=1 keeps them up until Ctrl-C)"
fi
