#!/usr/bin/env bash
# Measures the audit-log export of the release binary on SQLite and PostgreSQL:
# rows per second, time to first byte, and the server's peak resident memory, at
# 10,000 and 1,000,000 rows. Each size gets a freshly seeded database and a freshly
# started server, so the peak memory belongs to that export alone.
#
# Usage: bench/export.sh [ROWS ...]      (default: 10000 1000000)
# Needs: curl, python3; PostgreSQL at $BENCH_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/postgres) for the PostgreSQL rows;
# set BENCH_BACKENDS=sqlite to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 1000000)
backends=${BENCH_BACKENDS:-"sqlite postgres"}
admin_url=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
password="bench-password-123"

cargo build --release -p finetune-server >&2
bin=$PWD/target/release/finetune
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

database_url() { # backend rows
    if [ "$1" = sqlite ]; then
        echo "sqlite://$work/bench-$2.sqlite3"
    else
        local name="finetune_bench_$2"
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >&2
        echo "${admin_url%/*}/$name"
    fi
}

printf '%-9s %10s %12s %10s %12s %14s\n' backend rows seconds rows/s first_byte_ms peak_rss_MiB
for backend in $backends; do
    for rows in "${sizes[@]}"; do
        url=$(database_url "$backend" "$rows")
        export DATABASE_URL=$url SECRET_KEY=bench-secret-0123456789abcdef0123456789abcdef
        export LOGIN_THROTTLE_RATE=1000/sec RUST_LOG=warn BIND=127.0.0.1:0
        echo "$password" | "$bin" createsuperuser --username bench-admin >/dev/null
        "$bin" seed --audit-entries "$rows" 2>/dev/null

        "$bin" serve >"$work/out" 2>"$work/err" &
        server_pid=$!
        for _ in $(seq 1 100); do grep -q 'listening on' "$work/out" && break; sleep 0.1; done
        address=$(sed -n 's/^listening on //p' "$work/out" | head -n 1)
        token=$(curl -sf -H 'Content-Type: application/json' \
            -d "{\"username\":\"bench-admin\",\"password\":\"$password\"}" \
            "http://$address/api/auth/token/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')

        timing=$(curl -sf -o "$work/export.csv" -w '%{time_starttransfer} %{time_total}' \
            -H "Authorization: Bearer $token" "http://$address/api/logs/export/")
        peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
        kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

        exported=$(($(wc -l <"$work/export.csv") - 1))
        read -r first total <<<"$timing"
        python3 - "$backend" "$exported" "$first" "$total" "$peak_kib" <<'PY'
import sys
backend, rows, first, total, peak = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"{backend:<9} {rows:>10} {total:>12.2f} {rows/total:>10.0f} {first*1000:>12.1f} {peak/1024:>14.1f}")
PY
        if [ "$backend" = postgres ]; then
            psql "$admin_url" -qc "DROP DATABASE IF EXISTS finetune_bench_$rows WITH (FORCE)" >&2
        fi
    done
done
