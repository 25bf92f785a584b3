#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for tests and print its SQLAlchemy URL on stdout (nothing else).
#
#   export NEURON_ATLAS_TEST_POSTGRES_URL="$(scripts/start_postgres.sh)"
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root), creates a
# cluster in a fresh temp dir owned by the `postgres` user (or the current user when not root),
# listens on 127.0.0.1 on a free port with trust auth, and creates database `atlas_test`.
# Durability is switched off (fsync, synchronous_commit): the cluster is disposable and only for tests.
# Stop it with the command printed on stderr, or: scripts/start_postgres.sh --stop DIR
set -euo pipefail

log() { echo "start_postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ "${1:-}" == "--stop" ]]; then
    dir="${2:?usage: start_postgres.sh --stop DIR}"
    [[ -x "$dir/stop" ]] || die "$dir/stop not found; pass the folder printed when the cluster started"
    exec "$dir/stop"
fi

find_bindir() {
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]] && { echo "$candidate"; return 0; }
    done
    return 1
}

bindir="$(find_bindir)" || {
    [[ "$(id -u)" == 0 ]] || die "no PostgreSQL server found; run as root once, or: sudo apt-get install -y postgresql"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed; check network access to the Debian mirror"
    apt-get install -y -qq postgresql >&2 || die "apt-get install postgresql failed; see the messages above"
    bindir="$(find_bindir)" || die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
}

if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "user 'postgres' missing; reinstall the postgresql package"
    as_owner() { su postgres -s /bin/bash -c "$(printf '%q ' "$@")"; }
    owner=postgres
else
    as_owner() { "$@"; }
    owner="$(id -un)"
fi

python_bin="$(command -v python3 || true)"
[[ -n "$python_bin" ]] || die "python3 is needed to pick a free port"
port="$("$python_bin" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

dir="$(mktemp -d /tmp/atlas-pg.XXXXXX)"
chmod 755 "$dir"
chown "$owner" "$dir"
as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || die "initdb failed; see $dir/initdb.log"
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
    start >/dev/null || die "server did not start; see $dir/server.log"

cat >"$dir/stop" <<EOF
#!/usr/bin/env bash
# Stop the throwaway cluster and delete its folder.
$(declare -f as_owner)
as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$dir"
EOF
chmod 755 "$dir/stop"

as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres atlas_test \
    || die "createdb failed; see $dir/server.log"

log "cluster in $dir on 127.0.0.1:$port; stop with: $dir/stop"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/atlas_test"
