#!/usr/bin/env bash
# The one command that runs authvault's whole test suite (DESIGN.md §10).
#
#   scripts/test.sh                        run the suite (fmt, clippy, doc, tests)
#   scripts/test.sh --session -- CMD ...   run CMD (from the repo root) inside the same session
#   scripts/test.sh --help
#
# What it does:
#   1. installs what is missing (Debian/apt; root or sudo): dbus (dbus-run-session,
#      dbus-send), gnome-keyring, libsecret-tools (secret-tool), tmux (the
#      dashboard tests drive `vault dashboard` in a real terminal), postgresql
#      (initdb, pg_ctl, psql, pg_dump for the PostgreSQL tests), libfaketime
#      (a `vault` process whose clock is off, for the clock-skew tests), openssl
#      (a test CA and server certificate for the PostgreSQL TLS test); nodejs and npm
#      when there is no `npm`, util-linux when there is no `unshare` (the
#      real-client tests install Codex and Claude Code from npm and run them
#      without network), bsdutils when there is no `script` (the usage
#      import's progress line is tested on a pseudo-terminal);
#   2. starts a private D-Bus session (dbus-run-session, scripts/session-bus.conf:
#      no service activation, so a daemon that dies is not replaced) with its own
#      XDG_RUNTIME_DIR and an unlocked gnome-keyring (secrets component only)
#      whose keyrings live in a throw-away directory, so every run starts with
#      an empty, unlocked default ("login") collection and never touches the
#      user's real keyring; and a second private bus with its own gnome-keyring
#      (a second host's keyring), exported as AUTHVAULT_TEST_HOST_B_BUS;
#   3. checks for real that the default collection exists, is unlocked, and
#      that an item can be stored, read and deleted without a prompt;
#   4. starts a private PostgreSQL cluster (scripts/pg-cluster.sh: a throw-away
#      directory, Unix socket only, no TCP listener), checks that it answers,
#      and exports its superuser URL as AUTHVAULT_TEST_PG_URL and the directory
#      of its binaries as AUTHVAULT_TEST_PGBIN; the cluster is stopped and
#      removed when the script exits;
#   5. runs, in order: cargo fmt --check, cargo clippy --all-targets -D warnings,
#      cargo doc (RUSTDOCFLAGS=-Dwarnings), cargo test --all-targets,
#      cargo test --doc; all steps run, the exit status is the first failure's.
# Steps 2-4 happen in both modes. Inside the session AUTHVAULT_TEST_KEYRING=1 is
# exported, so keyring tests can assert they run against the real daemon. If the
# daemon or the PostgreSQL cluster cannot be started the script fails; it never
# skips.
set -euo pipefail

readonly KEYRING_PASSWORD="authvault-test-keyring" # throw-away keyring, not a secret
readonly DAEMON_WAIT_SECS=10
readonly PACKAGES=(dbus gnome-keyring libsecret-tools tmux postgresql libfaketime openssl)
readonly COMMANDS=(dbus-run-session dbus-send gnome-keyring-daemon secret-tool tmux psql pg_dump)

script_path=$(readlink -f "${BASH_SOURCE[0]}")
repo_root=$(cd "$(dirname "$script_path")/.." && pwd)
cd "$repo_root"

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() {
    printf '[test.sh] ERROR: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,6p' "$script_path" | sed 's/^# \{0,1\}//'; }

# A closed stdin (`<&-`) would hand fd 0 to the first file a child opens.
if ! { true <&0; } 2>/dev/null; then exec </dev/null; fi

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- install --
ensure_packages() {
    local missing=() p c
    for p in "${PACKAGES[@]}"; do
        dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
    done
    for c in "${COMMANDS[@]}"; do
        command -v "$c" >/dev/null || { [[ ${#missing[@]} -gt 0 ]] || missing=("${PACKAGES[@]}"); }
    done
    # By command, not package: a Node.js from elsewhere brings its own npm.
    command -v npm >/dev/null || missing+=(nodejs npm)
    command -v unshare >/dev/null || missing+=(util-linux)
    command -v script >/dev/null || missing+=(bsdutils)
    if [[ ${#missing[@]} -eq 0 ]]; then
        return
    fi
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root or install them"
        sudo=(sudo -n)
    fi
    log "installing: ${missing[*]}"
    local t0
    t0=$(now_ms)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q </dev/null >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 ||
        die "apt-get install ${missing[*]} failed"
    for c in "${COMMANDS[@]}" npm unshare; do
        command -v "$c" >/dev/null || die "'$c' still missing after installing ${missing[*]}"
    done
    log "installed in $(($(now_ms) - t0)) ms"
}

ensure_toolchain() {
    command -v cargo >/dev/null || die "cargo not found on PATH (install Rust: https://rustup.rs)"
    local comp=()
    cargo fmt --version >/dev/null 2>&1 || comp+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || comp+=(clippy)
    if [[ ${#comp[@]} -gt 0 ]]; then
        command -v rustup >/dev/null || die "cargo ${comp[*]} missing and no rustup to add it"
        log "adding rustup components: ${comp[*]}"
        rustup component add "${comp[@]}" >&2 || die "rustup component add ${comp[*]} failed"
    fi
}

# ------------------------------------------------------- inside the session --
session_dir=""
daemon_pid=""
host_b_daemon_pid=""
host_b_bus_pid=""
pg_dir=""

bus() { dbus-send --session --print-reply=literal "$@"; }
name_has_owner() {
    bus --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:"$1" 2>/dev/null |
        grep -q true
}
secrets_prop() { # OBJECT INTERFACE PROPERTY
    bus --dest=org.freedesktop.secrets "$1" org.freedesktop.DBus.Properties.Get string:"$2" string:"$3"
}

stop_pid() { # PID (ours): TERM, then KILL after 0.5 s
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 0
    kill "$1" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -9 "$1" 2>/dev/null || true
}

cleanup_session() {
    stop_pid "$daemon_pid"
    stop_pid "$host_b_daemon_pid"
    stop_pid "$host_b_bus_pid"
    [[ -z "$session_dir" ]] || rm -rf "$session_dir"
    [[ -z "$pg_dir" ]] || scripts/pg-cluster.sh stop "$pg_dir" || true
}

start_keyring() {
    [[ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]] || die "no DBUS_SESSION_BUS_ADDRESS inside dbus-run-session"
    # Nothing may own the name yet; otherwise something else answers for us.
    if name_has_owner org.freedesktop.secrets; then
        die "org.freedesktop.secrets already has an owner on a brand-new bus"
    fi
    session_dir=$(mktemp -d "${TMPDIR:-/tmp}/authvault-test.XXXXXX")
    trap cleanup_session EXIT
    export XDG_RUNTIME_DIR="$session_dir/runtime"
    mkdir -m 700 "$XDG_RUNTIME_DIR" "$session_dir/data"
    unset GNOME_KEYRING_CONTROL SSH_AUTH_SOCK

    launch_daemon "$session_dir"
    daemon_pid=$launched_pid
}

# Starts an unlocked gnome-keyring (secrets only) on the bus in
# DBUS_SESSION_BUS_ADDRESS, its keyrings and log under DIR; sets launched_pid.
launch_daemon() { # DIR
    local dir=$1 t0 i
    t0=$(now_ms)
    # --unlock reads the password on stdin and creates/unlocks the "login"
    # keyring, the default collection. XDG_DATA_HOME only for the daemon: its
    # keyrings go to the throw-away dir, never ~/.local/share/keyrings.
    # --foreground keeps the daemon our child: its pid is known and whatever
    # it prints (a GLib assertion before an abort) lands in daemon.log.
    printf '%s' "$KEYRING_PASSWORD" |
        XDG_DATA_HOME="$dir/data" gnome-keyring-daemon --foreground --unlock \
            --components=secrets >"$dir/daemon.log" 2>&1 &
    launched_pid=$!
    # The daemon claims the name a few ms later. Wait (NameHasOwner does not
    # activate anything): a client calling earlier makes D-Bus autostart a
    # second, locked daemon.
    for ((i = 0; i < DAEMON_WAIT_SECS * 20; i++)); do
        name_has_owner org.freedesktop.secrets && break
        sleep 0.05
    done
    if ! name_has_owner org.freedesktop.secrets; then
        cat "$dir/daemon.log" >&2 || true
        die "gnome-keyring-daemon did not claim org.freedesktop.secrets within ${DAEMON_WAIT_SECS} s; the keyring tests cannot run (not skipping)"
    fi
    local owner
    owner=$(bus --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetConnectionUnixProcessID \
        string:org.freedesktop.secrets | awk '{print $2}')
    [[ "$owner" == "$launched_pid" ]] ||
        die "org.freedesktop.secrets is owned by pid $owner, not by our daemon (pid $launched_pid)"
    log "gnome-keyring-daemon (pid $launched_pid) ready in $(($(now_ms) - t0)) ms"
}

# A second host's Secret Service: its own private bus (same configuration)
# and its own gnome-keyring, so tests can give a simulated host b a keyring
# of its own. Exported as AUTHVAULT_TEST_HOST_B_BUS; torn down on exit.
start_host_b() {
    local dir="$session_dir/host-b" out
    mkdir -m 700 "$dir" "$dir/data" "$dir/runtime"
    out=$(dbus-daemon --config-file="$repo_root/scripts/session-bus.conf" --fork \
        --print-address=1 --print-pid=1) || die "the second private D-Bus (host b) did not start"
    AUTHVAULT_TEST_HOST_B_BUS=$(sed -n 1p <<<"$out")
    host_b_bus_pid=$(sed -n 2p <<<"$out")
    [[ -n "$AUTHVAULT_TEST_HOST_B_BUS" && "$host_b_bus_pid" =~ ^[0-9]+$ ]] ||
        die "the second private D-Bus printed no address and pid: $out"
    export AUTHVAULT_TEST_HOST_B_BUS
    DBUS_SESSION_BUS_ADDRESS=$AUTHVAULT_TEST_HOST_B_BUS XDG_RUNTIME_DIR="$dir/runtime" \
        launch_daemon "$dir"
    host_b_daemon_pid=$launched_pid
    DBUS_SESSION_BUS_ADDRESS=$AUTHVAULT_TEST_HOST_B_BUS verify_keyring
    log "host b: bus $AUTHVAULT_TEST_HOST_B_BUS (pid $host_b_bus_pid), keyring pid $host_b_daemon_pid"
}

# A daemon that died during the run explains every keyring failure after it:
# say so, with its last words, and fail the run.
check_daemon_lived() {
    local pid=$daemon_pid dir=$session_dir
    if kill -0 "$pid" 2>/dev/null; then
        pid=$host_b_daemon_pid dir="$session_dir/host-b"
        kill -0 "$pid" 2>/dev/null && return 0
    fi
    local status=0
    wait "$pid" || status=$?
    log "ERROR: gnome-keyring-daemon (pid $pid) died during the run (exit status $status); its log:"
    tail -n 40 "$dir/daemon.log" >&2 || true
    return 1
}

count_items() { # COLLECTION
    local out
    out=$(secrets_prop "$1" org.freedesktop.Secret.Collection Items) ||
        die "cannot read the Items of $1"
    grep -o '/org/freedesktop/secrets/[^ ]*' <<<"$out" | wc -l || true
}

verify_keyring() {
    local alias locked items canary got
    alias=$(bus --dest=org.freedesktop.secrets /org/freedesktop/secrets \
        org.freedesktop.Secret.Service.ReadAlias string:default | tr -d '"' | awk '{print $NF}') ||
        die "cannot ask the Secret Service for its default collection"
    [[ "$alias" == /org/freedesktop/secrets/collection/* ]] ||
        die "the Secret Service has no default collection (alias 'default' -> '$alias')"
    locked=$(secrets_prop "$alias" org.freedesktop.Secret.Collection Locked | awk '{print $NF}') ||
        die "cannot read the Locked property of $alias"
    [[ "$locked" == false ]] || die "default collection $alias is locked (Locked=$locked)"
    items=$(count_items "$alias")
    [[ "$items" -eq 0 ]] || die "default collection $alias is not empty ($items items)"
    # Store, read back and delete an item for real, with a deadline: a locked
    # collection would wait for a prompt forever.
    canary="canary-$$-$RANDOM"
    printf '%s' "$canary" | timeout 5 secret-tool store --label='authvault test canary' \
        authvault-test canary ||
        die "storing an item in the default collection failed or hung (prompt?)"
    got=$(timeout 5 secret-tool lookup authvault-test canary) ||
        die "reading the canary item back failed"
    [[ "$got" == "$canary" ]] || die "canary item read back wrong"
    timeout 5 secret-tool clear authvault-test canary || die "deleting the canary item failed"
    items=$(count_items "$alias")
    [[ "$items" -eq 0 ]] || die "canary item was not deleted ($items items left)"
    log "default collection $alias: unlocked, empty, store/read/delete OK"
}

# The private PostgreSQL cluster every PostgreSQL test creates its databases in.
start_postgres() {
    local t0
    t0=$(now_ms)
    pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/authvault-pg.XXXXXX")
    AUTHVAULT_TEST_PG_URL=$(scripts/pg-cluster.sh start "$pg_dir") ||
        die "the private PostgreSQL did not start; the PostgreSQL tests cannot run (not skipping)"
    AUTHVAULT_TEST_PGBIN=${AUTHVAULT_TEST_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
    AUTHVAULT_TEST_FAKETIME_LIB=$(dpkg -L libfaketime | grep '/libfaketime\.so\.1$' | head -1)
    [[ -f "$AUTHVAULT_TEST_FAKETIME_LIB" ]] || die "libfaketime.so.1 not found (apt-get install libfaketime)"
    export AUTHVAULT_TEST_PG_URL AUTHVAULT_TEST_PGBIN AUTHVAULT_TEST_FAKETIME_LIB
    [[ $(psql "$AUTHVAULT_TEST_PG_URL" -Atqc 'SELECT 1') == 1 ]] ||
        die "the private PostgreSQL ($pg_dir) does not answer; its log: $(tail -n 20 "$pg_dir/log")"
    log "PostgreSQL in $pg_dir ready in $(($(now_ms) - t0)) ms"
}

first_failure=0
step() { # NAME CMD...
    local name=$1 rc t0
    shift
    log "==> $name: $*"
    t0=$(now_ms)
    set +e
    "$@"
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        log "<== $name: ok ($(($(now_ms) - t0)) ms)"
    else
        log "<== $name: FAILED with status $rc"
        [[ $first_failure -ne 0 ]] || first_failure=$rc
        failed_steps+=("$name")
    fi
}

run_suite() {
    exec </dev/null
    failed_steps=()
    step fmt cargo fmt --all -- --check
    step clippy cargo clippy --all-targets -- -D warnings
    step doc env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps
    step test cargo test --all-targets
    step doctest cargo test --doc
    if [[ $first_failure -eq 0 ]]; then
        log "all steps passed"
    else
        log "FAILED steps: ${failed_steps[*]} (exit status $first_failure)"
    fi
    return "$first_failure"
}

inner() { # MODE [CMD...]
    local mode=$1 rc
    shift
    start_keyring
    verify_keyring
    start_host_b
    export AUTHVAULT_TEST_KEYRING=1
    start_postgres
    set +e
    if [[ $mode == suite ]]; then
        run_suite
    else
        "$@"
    fi
    rc=$?
    check_daemon_lived || [[ $rc -ne 0 ]] || rc=1
    set -e
    exit "$rc"
}

# ------------------------------------------------------------------- main --
main() {
    local mode=suite
    case "${1:-}" in
    "") ;;
    --session)
        shift
        [[ "${1:-}" != -- ]] || shift
        [[ $# -gt 0 ]] || die "usage: scripts/test.sh --session -- CMD [ARGS...]"
        mode=session
        ;;
    __inner)
        shift
        inner "$@"
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument: $1"
        ;;
    esac
    ensure_packages
    [[ $mode == session ]] || ensure_toolchain
    # dbus-run-session starts a private bus, runs us inside it, tears it down
    # and exits with our status.
    exec dbus-run-session --config-file="$repo_root/scripts/session-bus.conf" -- \
        bash "$script_path" __inner "$mode" "$@"
}

main "$@"
