#!/usr/bin/env bash
# Installs psa-bridge's local tooling into <repo>/.venv: moto (server), cfn-lint, AWS SAM CLI and
# cargo-lambda, at the versions pinned in infra/local/requirements.txt. Idempotent: a stamp file
# holding the requirements' hash skips the install when nothing changed.
# Needs only python3 (with venv and pip) and a Rust toolchain with rustfmt and clippy.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQS="$REPO/infra/local/requirements.txt"
VENV="$REPO/.venv"
STAMP="$VENV/.psa-bridge-requirements.sha256"
PYTHON="${PYTHON:-python3}"
export SAM_CLI_TELEMETRY=0

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Rust toolchain (nothing can be fetched here: rustup components must already be installed)
command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH; install a Rust toolchain (rustup) first"
cargo fmt --version >/dev/null 2>&1 \
    || die "rustfmt missing: 'cargo fmt --version' failed (install it with 'rustup component add rustfmt')"
cargo clippy --version >/dev/null 2>&1 \
    || die "clippy missing: 'cargo clippy --version' failed (install it with 'rustup component add clippy')"
say "rust: $(cargo --version), $(cargo fmt --version), $(cargo clippy --version)"

# --- Python virtualenv
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found on PATH (set PYTHON=... to choose another)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || die "$PYTHON is $("$PYTHON" --version 2>&1); aws-sam-cli needs Python 3.9 or newer"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "venv: $VENV exists ($("$VENV/bin/python" --version 2>&1))"
else
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" \
        || die "'$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    say "venv: created $VENV with $("$VENV/bin/python" --version 2>&1)"
fi

# --- pinned tools
want="$( { sha256sum "$REQS" | cut -d' ' -f1; "$VENV/bin/python" --version 2>&1; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
tools_present() {
    local t
    for t in moto_server cfn-lint sam cargo-lambda; do
        [[ -x "$VENV/bin/$t" ]] || return 1
    done
}
if [[ "$want" == "$have" ]] && tools_present; then
    say "tools: up to date (stamp matches infra/local/requirements.txt), nothing installed"
else
    say "tools: installing infra/local/requirements.txt into .venv (first time: a minute or two)"
    start=$SECONDS
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" \
        || die "pip install -r infra/local/requirements.txt failed"
    tools_present || die "install finished but a tool is missing from $VENV/bin"
    printf '%s\n' "$want" > "$STAMP"
    say "tools: installed in $((SECONDS - start)) s"
fi

moto_v="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))')"
say "moto_server $moto_v, $("$VENV/bin/cfn-lint" --version 2>&1), $("$VENV/bin/sam" --version 2>&1), $("$VENV/bin/cargo-lambda" lambda --version 2>&1 | head -n1)"
say "ready: activate with 'source .venv/bin/activate' or call .venv/bin/<tool>"
