#!/usr/bin/env bash
# Load benchmark of the release `finetune` server, on SQLite and on PostgreSQL.
#
# For each backend it seeds a database with users and AUDIT_ENTRIES audit entries,
# starts `finetune serve` on 127.0.0.1 and drives it with wrk. It then prints one table
# per backend. The table gives the throughput and latency of /healthz and of Bearer
# /api/auth/me/, chained refresh rotations, and logins against the argon2 hash rate
# measured in the same run. It also gives the /me latency while logins saturate the CPU,
# and the audit-log export at SMALL_AUDIT_ENTRIES and AUDIT_ENTRIES rows: rows/s, time
# to first byte, peak RSS, and on PostgreSQL the ratio to COPY.
# It prints numbers and asserts none of them. docs/BENCHMARKS.md explains each figure.
#
# Usage: bench/load.sh
# Settings (environment variables, defaults in brackets):
#   DURATION             wrk run time per scenario, in seconds, with or without "s" [10s]
#   AUDIT_ENTRIES        audit entries in the large database [1000000]
#   SMALL_AUDIT_ENTRIES  audit entries in the small export database [10000]
#   SEED_USERS           seeded users, who sign in during the login scenarios [1000]
#   CONNECTIONS          wrk connections for /healthz and /me [32]
#   ROTATION_CONNECTIONS wrk threads and connections for rotations, one chain each [32]
#   LOGIN_CONNECTIONS    wrk connections for logins [8]
#   BENCH_BACKENDS       backends to run, in order ["sqlite postgres"]
#   BENCH_POSTGRES_URL   a PostgreSQL user who may create databases, on 127.0.0.1 or
#                        localhost [postgres://postgres@127.0.0.1:5432/postgres]
#   EXPORT_TIMEOUT       maximum seconds for one export download [600]
# Needs: apt-get (to install wrk when missing), cargo, curl, python3, and psql for
# PostgreSQL. Progress goes to standard error, the tables to standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

duration=${DURATION:-10s}
audit_entries=${AUDIT_ENTRIES:-1000000}
small_entries=${SMALL_AUDIT_ENTRIES:-10000}
seed_users=${SEED_USERS:-1000}
connections=${CONNECTIONS:-32}
rotation_connections=${ROTATION_CONNECTIONS:-32}
login_connections=${LOGIN_CONNECTIONS:-8}
backends=${BENCH_BACKENDS:-"sqlite postgres"}
admin_url=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export_timeout=${EXPORT_TIMEOUT:-600}
wrk_threads=2

password="bench-password-0123"
admin_user="bench-admin"
lua=$repo/bench/lua

log() { echo "load.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Exits unless $2 is an integer from $3 to $4. $1 names the setting in the message.
check_integer() {
    [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
        die "$1=$2 is invalid: expected an integer from $3 to $4"
}

[[ $duration =~ ^([0-9]+)s?$ ]] || die "DURATION=$duration is invalid: expected whole seconds, such as 10 or 10s"
seconds=${BASH_REMATCH[1]}
check_integer DURATION "$seconds" 1 3600
check_integer AUDIT_ENTRIES "$audit_entries" 1 100000000
check_integer SMALL_AUDIT_ENTRIES "$small_entries" 1 100000000
check_integer SEED_USERS "$seed_users" 1 1000000
check_integer CONNECTIONS "$connections" "$wrk_threads" 10000
check_integer ROTATION_CONNECTIONS "$rotation_connections" 1 256
check_integer LOGIN_CONNECTIONS "$login_connections" "$wrk_threads" 10000
check_integer EXPORT_TIMEOUT "$export_timeout" 1 86400
[ "$rotation_connections" -le "$seed_users" ] ||
    die "ROTATION_CONNECTIONS=$rotation_connections is invalid: each rotation chain signs in its own seeded user, so set at most SEED_USERS=$seed_users"
for backend in $backends; do
    case $backend in
        sqlite | postgres) ;;
        *) die "BENCH_BACKENDS: unknown backend \"$backend\": expected sqlite, postgres or both" ;;
    esac
done

# Settings of every finetune process below. The access-token lifetime is raised so that
# a token obtained before a long export is still valid when the export starts.
export SECRET_KEY=bench-secret-key-0123456789abcdef0123456789
export LOGIN_THROTTLE_RATE=100000/sec
export ACCESS_TOKEN_LIFETIME=1h
export RUST_LOG=warn
export BIND=127.0.0.1:0
export ENVIRONMENT=development
export NO_COLOR=1

work=$(mktemp -d)
server_pids=()
background_pids=()
created_databases=()

cleanup() {
    local pid name
    for pid in "${background_pids[@]}" "${server_pids[@]}"; do
        stop_process "$pid"
    done
    for name in "${created_databases[@]}"; do
        psql "$admin_url" -Xqc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >&2 ||
            log "could not drop the database $name; drop it by hand"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'log "interrupted; stopping the processes it started"; exit 130' INT TERM

# Sends SIGTERM to a process this script started, waits up to 10 s, then SIGKILL.
stop_process() {
    local pid=$1 attempt
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for attempt in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop within 10 s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Prints an awk arithmetic EXPRESSION with a printf FORMAT: calc FORMAT EXPRESSION.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# ---------------------------------------------------------------- tools and build

install_wrk() {
    command -v wrk >/dev/null && return 0
    log "installing wrk with apt-get"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y wrk >&2 ||
        die "apt-get install -y wrk failed. Run apt-get update first, or install wrk 4 by hand"
}

check_postgres() {
    command -v psql >/dev/null || die "psql is missing. Install postgresql-client or set BENCH_BACKENDS=sqlite"
    local host
    host=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname or "")' "$admin_url")
    case $host in
        127.0.0.1 | localhost) ;;
        *) die "BENCH_POSTGRES_URL must point at 127.0.0.1 or localhost, not \"$host\"" ;;
    esac
    PGCONNECT_TIMEOUT=5 psql "$admin_url" -XAtqc 'SELECT 1' >/dev/null ||
        die "PostgreSQL at BENCH_POSTGRES_URL does not respond. Start it, fix the URL or set BENCH_BACKENDS=sqlite"
}

# Sets hashes_per_second: one core's argon2id hash rate, from the median time per hash
# of the criterion benchmark (the server's parameters, m = 19456 KiB, t = 2, p = 1).
measure_hash_rate() {
    log "measuring argon2id hashes per second with criterion"
    CRITERION_HOME=$work/criterion cargo bench -p finetune-benches --bench passwords -- \
        --noplot '^argon2id/hash$' >"$work/criterion.out" 2>&1 ||
        {
            tail -n 20 "$work/criterion.out" >&2
            die "cargo bench -p finetune-benches --bench passwords failed"
        }
    local median_ns
    median_ns=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' \
        "$work/criterion/argon2id/hash/new/estimates.json") || {
        tail -n 20 "$work/criterion.out" >&2
        die "criterion wrote no median for argon2id/hash (its last output lines are above)"
    }
    hash_median_ms=$(calc '%.2f' "$median_ns / 1e6")
    hashes_per_second=$(calc '%.2f' "1e9 / $median_ns")
}

# ---------------------------------------------------------------- databases and servers

# Creates an empty database for backend $1 named after $2 and sets database_url. Call it
# in this shell, not in $(...), so that cleanup can drop the database it records.
create_database() {
    local backend=$1 label=$2
    if [ "$backend" = sqlite ]; then
        database_url="sqlite://$work/$label.sqlite3"
        return
    fi
    local name="finetune_bench_$$_$label"
    created_databases+=("$name")
    PGOPTIONS="-c client_min_messages=warning" psql "$admin_url" -Xq \
        -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >&2
    # Replace the database in the path and keep any query string.
    local base=${admin_url%%\?*}
    local query=${admin_url#"$base"}
    database_url="${base%/*}/$name$query"
}

# Seeds $2 users and $3 audit entries into $1, then creates the admin. The users come
# first because `finetune seed` numbers their names after the highest user id, so on an
# empty database they are seed-user-1 to seed-user-$2.
seed_database() {
    local url=$1 users=$2 entries=$3
    printf '%s\n' "$password" | (cd "$work" && DATABASE_URL=$url "$bin" seed --users "$users" --audit-entries "$entries") \
        >"$work/seed.out" 2>&1 || {
        cat "$work/seed.out" >&2
        die "seed failed on $url"
    }
    sed 's/^/load.sh:   /' "$work/seed.out" >&2
    printf '%s\n' "$password" | (cd "$work" && DATABASE_URL=$url "$bin" createsuperuser --username "$admin_user") \
        >"$work/seed.out" 2>&1 || {
        cat "$work/seed.out" >&2
        die "createsuperuser failed on $url"
    }
}

# Brings the PostgreSQL database $2 to a steady state before a measurement. VACUUM
# (ANALYZE) does the work that autovacuum would otherwise start during a scenario after
# bulk inserts or updates, and CHECKPOINT writes the dirty pages out. pgbench vacuums
# before each run for the same reason. Does nothing on SQLite ($1).
settle_database() {
    local backend=$1 url=$2
    [ "$backend" = postgres ] || return 0
    PGOPTIONS="-c client_min_messages=warning" psql "$url" -Xq -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >&2 ||
        log "VACUUM or CHECKPOINT failed on $url; the next figures may include autovacuum's work"
}

# Starts `finetune serve` on $1 and sets server_pid and server_address. The server runs
# in the work folder, so a finetune.toml in the repository does not change its settings.
start_server() {
    local url=$1 attempt
    server_log=$work/server-${#server_pids[@]}
    (cd "$work" && DATABASE_URL=$url exec "$bin" serve) >"$server_log.out" 2>"$server_log.err" &
    server_pid=$!
    server_pids+=("$server_pid")
    server_address=""
    for attempt in $(seq 1 300); do
        server_address=$(sed -n 's/^listening on //p' "$server_log.out" | head -n 1)
        [ -n "$server_address" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$server_log.err" >&2
    die "finetune serve on $url did not print \"listening on\" within 30 s"
}

stop_server() {
    stop_process "$server_pid"
}

# Prints the server's peak resident set size so far (VmHWM), in KiB.
peak_rss_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"
}

# Signs $1 in with the token API and prints "ACCESS REFRESH".
obtain_tokens() {
    curl -sS --fail-with-body --max-time 30 -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$password\"}" "http://$server_address/api/auth/token/" |
        python3 -c 'import json, sys; body = json.load(sys.stdin); print(body["access"], body["refresh"])' ||
        die "POST /api/auth/token/ as $1 failed"
}

# Exits unless GET $1 with the access token $2 (may be empty) returns 200.
expect_ok() {
    local status headers=()
    [ -z "$2" ] || headers=(-H "Authorization: Bearer $2")
    status=$(curl -sS -o "$work/preflight.out" -w '%{http_code}' --max-time 30 \
        "${headers[@]}" "http://$server_address$1") || status="no response"
    [ "$status" = 200 ] || die "GET $1 returned $status before the run: $(head -c 300 "$work/preflight.out")"
}

# ---------------------------------------------------------------- wrk

# Starts wrk in the background, with its output in $work/NAME.out, and sets wrk_pid:
# start_wrk NAME THREADS CONNECTIONS SECONDS SCRIPT PATH. The environment carries the
# script's BENCH_* settings.
start_wrk() {
    local name=$1 threads=$2 conns=$3 secs=$4 script=$5 path=$6
    # wrk ends by itself after SECONDS; the outer timeout only catches a hung wrk.
    timeout -k 5 $((secs + 60)) wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout 10s \
        -s "$lua/$script" "http://$server_address$path" >"$work/$name.out" 2>&1 &
    wrk_pid=$!
    background_pids+=("$wrk_pid")
}

# Waits for the wrk run NAME, process PID, and checks that it printed its summary.
finish_wrk() {
    local name=$1 pid=$2
    wait "$pid" || {
        cat "$work/$name.out" >&2
        die "wrk for $name failed"
    }
    grep -q '^BENCH ' "$work/$name.out" || {
        cat "$work/$name.out" >&2
        die "wrk for $name printed no BENCH summary line"
    }
}

# Runs wrk in the foreground, with the arguments of start_wrk.
run_wrk() {
    start_wrk "$@"
    finish_wrk "$1" "$wrk_pid"
}

# Prints the value of KEY on the BENCH line of run NAME: field NAME KEY.
field() {
    sed -n "s/^BENCH .*\b$2=\([^ ]*\).*/\1/p" "$work/$1.out" | head -n 1
}

# Prints failed responses plus socket errors of run NAME.
errors_of() {
    echo $(($(field "$1" failed) + $(field "$1" socket_errors)))
}

# ---------------------------------------------------------------- scenarios

# Exports the database $2 (label $3) from a freshly started server and appends a row to
# $export_table.
# The admin's token comes from a separate, short-lived server, so the argon2 memory
# of that login does not count in the export server's peak RSS.
measure_export() {
    local backend=$1 url=$2 label=$3
    start_server "$url"
    local tokens
    tokens=$(obtain_tokens "$admin_user")
    local access=${tokens%% *}
    stop_server

    start_server "$url"
    export_start_rss_kib=$(peak_rss_kib)
    curl -sS --fail --max-time "$export_timeout" -H "Authorization: Bearer $access" \
        -w '%{stderr}%{time_starttransfer} %{time_total}\n' "http://$server_address/api/logs/export/" \
        2>"$work/export-$label.timing" | wc -l >"$work/export-$label.lines" || {
        cat "$work/export-$label.timing" >&2
        die "GET /api/logs/export/ on the $label database failed"
    }
    export_peak_rss_kib=$(peak_rss_kib)
    stop_server

    local first total
    read -r first total < <(tail -n 1 "$work/export-$label.timing")
    export_rows=$(($(cat "$work/export-$label.lines") - 1))
    export_seconds=$total
    export_first_byte_ms=$(calc '%.1f' "$first * 1000")
    export_rate=$(calc '%.0f' "$export_rows / $total")

    export_copy_rate="n/a"
    export_copy_ratio="n/a"
    if [ "$backend" = postgres ]; then
        # The same columns, rows and order as the CSV export, written by the database to
        # psql, which discards them. psql's \timing covers the COPY command alone, not
        # the start of psql and its connection set-up.
        local copy_ms copy_rows
        copy_ms=$(LC_ALL=C psql "$url" -Xq -o /dev/null -c '\timing on' -c "COPY (SELECT id, occurred_at,
            actor_id, actor_username, action, outcome, target_type, target_id, ip, user_agent,
            request_id, details FROM audit_log ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)" |
            sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
        [ -n "$copy_ms" ] || die "psql printed no time for the COPY of the $label database"
        copy_rows=$(psql "$url" -XAtqc 'SELECT count(*) FROM audit_log')
        export_copy_rate=$(calc '%.0f' "$copy_rows / ($copy_ms / 1000)")
        export_copy_ratio=$(calc '%.1f %%' "100 * $export_rate / $export_copy_rate")
    fi
    printf '%-28s %10d %10s %10s %14s %10s %10s %12s %10s\n' "export, $label database" \
        "$export_rows" "$(calc '%.2f' "$export_seconds")" "$export_rate" "$export_first_byte_ms" \
        "$(calc '%.1f' "$export_start_rss_kib / 1024")" "$(calc '%.1f' "$export_peak_rss_kib / 1024")" \
        "$export_copy_rate" "$export_copy_ratio" >>"$export_table"
}

# Writes the Lua file that rotate.lua reads: one refresh token per wrk thread, each from
# a login of its own seeded user.
write_refresh_tokens() {
    local file=$1 index tokens
    echo "return {" >"$file"
    for index in $(seq 1 "$rotation_connections"); do
        tokens=$(obtain_tokens "seed-user-$index")
        echo "  \"${tokens#* }\"," >>"$file"
    done
    echo "}" >>"$file"
}

# Prints one table row from wrk run NAME: load_row LABEL CONNECTIONS NAME COMPARISON.
load_row() {
    printf '%-34s %6s %10s %9s %9s %8s  %s\n' "$1" "$2" "$(calc '%.0f' "$(field "$3" rate)")" \
        "$(field "$3" p50_ms)" "$(field "$3" p99_ms)" "$(errors_of "$3")" "$4" >>"$load_table"
}

run_backend() {
    local backend=$1 small_url large_url
    log "$backend: seeding the databases"
    create_database "$backend" small
    small_url=$database_url
    create_database "$backend" large
    large_url=$database_url
    seed_database "$small_url" 0 "$small_entries"
    seed_database "$large_url" "$seed_users" "$audit_entries"
    settle_database "$backend" "$small_url"
    settle_database "$backend" "$large_url"

    # The exports run first: the load scenarios append audit entries to the large database.
    log "$backend: exports of the small and the large database"
    export_table=$work/exports-$backend
    load_table=$work/load-$backend
    : >"$export_table"
    : >"$load_table"
    measure_export "$backend" "$small_url" small
    measure_export "$backend" "$large_url" large

    log "$backend: load scenarios, ${seconds}s each"
    start_server "$large_url"
    local load_log=$server_log.err tokens access
    tokens=$(obtain_tokens "$admin_user")
    access=${tokens%% *}
    expect_ok /healthz ""
    expect_ok /api/auth/me/ "$access"

    BENCH_PATH=/healthz run_wrk healthz "$wrk_threads" "$connections" "$seconds" get.lua /healthz
    BENCH_PATH=/api/auth/me/ BENCH_ACCESS_TOKEN=$access \
        run_wrk me "$wrk_threads" "$connections" "$seconds" get.lua /api/auth/me/

    write_refresh_tokens "$work/refresh-tokens.lua"
    BENCH_REFRESH_TOKENS=$work/refresh-tokens.lua run_wrk rotate "$rotation_connections" \
        "$rotation_connections" "$seconds" rotate.lua /api/auth/token/refresh/
    settle_database "$backend" "$large_url"

    BENCH_USERS=$seed_users BENCH_PASSWORD=$password \
        run_wrk login "$wrk_threads" "$login_connections" "$seconds" login.lua /api/auth/token/

    # Logins and /me together: the login run starts a second earlier and ends two seconds
    # later, so every /me request meets saturating logins.
    BENCH_USERS=$seed_users BENCH_PASSWORD=$password \
        start_wrk login-busy "$wrk_threads" "$login_connections" $((seconds + 3)) login.lua /api/auth/token/
    local login_pid=$wrk_pid
    sleep 1
    BENCH_PATH=/api/auth/me/ BENCH_ACCESS_TOKEN=$access \
        run_wrk me-busy "$wrk_threads" "$connections" "$seconds" get.lua /api/auth/me/
    finish_wrk login-busy "$login_pid"
    stop_server

    local cores hash_capacity
    cores=$(nproc)
    hash_capacity=$(calc '%.2f' "$cores * $hashes_per_second")
    load_row "GET /healthz" "$connections" healthz ""
    load_row "GET /api/auth/me/ (Bearer)" "$connections" me \
        "$(calc '%.1f %%' "100 * $(field me rate) / $(field healthz rate)") of /healthz"
    load_row "refresh rotation, chained" "$rotation_connections" rotate "one chain per connection"
    load_row "login (POST /api/auth/token/)" "$login_connections" login \
        "$(calc '%.1f %%' "100 * $(field login rate) / $hash_capacity") of $cores cores x $hashes_per_second hashes/s"
    load_row "GET /api/auth/me/ during logins" "$connections" me-busy \
        "p99 $(calc '%.1f' "$(field me-busy p99_ms) / $(field me p99_ms)") x idle p99"
    load_row "login during /me" "$login_connections" login-busy \
        "$(calc '%.1f %%' "100 * $(field login-busy rate) / $hash_capacity") of $cores cores x hashes/s"

    echo
    echo "== $backend: $audit_entries audit entries, $seed_users users, ${seconds}s per wrk run," \
        "load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
    printf '%-34s %6s %10s %9s %9s %8s  %s\n' scenario conns "per second" "p50 ms" "p99 ms" errors comparison
    cat "$load_table"
    echo
    printf '%-28s %10s %10s %10s %14s %10s %10s %12s %10s\n' export rows seconds "rows/s" \
        "first byte ms" "start MiB" "peak MiB" "COPY rows/s" "of COPY"
    cat "$export_table"

    local warnings failures
    warnings=$(grep -cw WARN "$load_log" || true)
    failures=$(grep -cw ERROR "$load_log" || true)
    if [ "$((warnings + failures))" -gt 0 ]; then
        echo "server log during the load scenarios: $warnings WARN and $failures ERROR lines, the first:"
        grep -m 3 -wE 'WARN|ERROR' "$load_log" | cut -c 1-240
    fi
    grep -h '^BENCH_FIRST_FAILURE' "$work/rotate.out" | head -n 3 |
        sed 's/^BENCH_FIRST_FAILURE/first rotation failure:/' || true
    grep -h '^BENCH_LOGIN' "$work/login.out" "$work/login-busy.out" | grep -v 'throttled=0$' |
        sed 's/^BENCH_LOGIN/logins rejected with 429:/' || true
}

# ---------------------------------------------------------------- main

start_load=$(cut -d ' ' -f 1-3 /proc/loadavg)
install_wrk
for backend in $backends; do
    [ "$backend" = postgres ] && check_postgres
done
log "building the release binary"
cargo build --release -p finetune-server >&2
bin=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/finetune
[ -x "$bin" ] || die "the release build did not produce $bin"
measure_hash_rate

echo "machine: $(nproc) cores, $(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory," \
    "load average $start_load at the start"
echo "argon2id hash (criterion median): $hash_median_ms ms, so $hashes_per_second hashes/s per core"
for backend in $backends; do
    run_backend "$backend"
done
echo
echo "load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
