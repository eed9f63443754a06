# Shared by scripts/benches/booking and scripts/benches/subscriptions (sourced, not run):
# builds the server and the load driver (examples/appointments_load.rs), and starts the
# server on the chosen backend, on databases of its own that are dropped afterwards.
#
# Environment: BENCH_BACKEND (postgres, the default: the production path, LISTEN/NOTIFY;
# or embedded), BENCH_PROFILE (release, the default, or dev), BENCH_TARGET_DIR (default
# target/bench). With postgres, TEST_POSTGRES_URL names the cluster; when it is unset the
# test services are started (scripts/test, services only) and stopped afterwards.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
BACKEND="${BENCH_BACKEND:-postgres}"
PROFILE="${BENCH_PROFILE:-release}"
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-target/bench}"
log() { printf 'bench %s: %s\n' "$BENCH_NAME" "$*" >&2; }

log "building the server and the load driver ($PROFILE) into $CARGO_TARGET_DIR"
if [[ "$PROFILE" == release ]]; then
    cargo build --release --bin jolmood --example appointments_load >&2
    BIN="$(cd "$CARGO_TARGET_DIR/release" && pwd -P)"
else
    cargo build --bin jolmood --example appointments_load >&2
    BIN="$(cd "$CARGO_TARGET_DIR/debug" && pwd -P)"
fi

WORK="$(mktemp -d "/tmp/jolmood-$BENCH_NAME-bench.XXXXXX")"
SERVER_PID=""
SERVICES_PID=""
DATABASES=()
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    for db in "${DATABASES[@]}"; do
        psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [[ -n "$SERVICES_PID" ]]; then
        kill "$SERVICES_PID" 2>/dev/null || true
        wait "$SERVICES_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Thousands of websockets need as many descriptors, on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_ENV=(PATH="$PATH" DATA_DIR="$WORK/data" JWT_SECRET="bench-secret-that-is-long-enough-0123456789"
    REGISTRATIONS_PER_ADDRESS=10000000 LOG_FORMAT=json RUST_LOG=warn)
if [[ "$BACKEND" == postgres ]]; then
    if [[ -z "${TEST_POSTGRES_URL:-}" ]]; then
        log "starting the test services (scripts/test, services only)"
        SCRIPTS_TEST_SERVICES_ONLY=1 ./scripts/test >"$WORK/services.env" 2>"$WORK/services.log" &
        SERVICES_PID=$!
        for _ in $(seq 1 600); do
            grep -q TEST_MONGODB_URL "$WORK/services.env" 2>/dev/null && break
            kill -0 "$SERVICES_PID" 2>/dev/null || { cat "$WORK/services.log" >&2; exit 1; }
            sleep 0.2
        done
        # shellcheck disable=SC1091
        source "$WORK/services.env"
    fi
    for name in auth user post appointment admin; do
        db="jolmood_bench_$$_$name"
        psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
        DATABASES+=("$db")
        url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$TEST_POSTGRES_URL" "$db")"
        var="$(echo "$name" | tr '[:lower:]' '[:upper:]')_DATABASE_URL"
        SERVER_ENV+=("$var=$url")
    done
    SERVER_ENV+=(DATABASE_MAX_CONNECTIONS=20)
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
mkdir -p "$WORK/data"
env -i "${SERVER_ENV[@]}" BIND_ADDR="127.0.0.1:$PORT" "$BIN/jolmood" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    python3 -c "import urllib.request; urllib.request.urlopen('$BASE/health', timeout=1)" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
log "server up on $BASE ($BACKEND)"
