#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the sandbox's tests and the end-to-end tests,
# which start their own moto server from .venv (PSA_BRIDGE_MOTO). Installs the tooling first.
# Extra arguments go to the test binaries (e.g. a name filter): bash infra/local/test.sh quota
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"

bash infra/local/setup.sh

# Local AWS: moto from the project venv, dummy credentials and a region so the SDK never looks for
# real ones (nor at the instance-metadata address). Nothing here reaches AWS.
export PATH="$REPO/.venv/bin:$PATH"
export PSA_BRIDGE_MOTO="$REPO/.venv/bin/moto_server"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Compile every target (benches too, so they keep building), then execute all but the benches.
echo "test: building all targets"
cargo test --workspace --all-targets --no-run

echo "test: running lib, bin, integration-test and example targets"
set +e
cargo test --workspace --lib --bins --tests --examples --no-fail-fast -- "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# One closing line that adds up every "test result:" line above.
awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed;?$/)  p += $(i - 1)
            if ($i ~ /^failed;?$/)  f += $(i - 1)
            if ($i ~ /^ignored;?$/) s += $(i - 1)
        }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
