#!/usr/bin/env bash
# Runs psa-bridge locally with demo data: `psa-bridge local` starts moto, the sandbox PSA/platform
# servers and the handlers (webhooks on 127.0.0.1, schedules as timers, the template's event
# routing) and prints what it did. Arguments go to `psa-bridge local` (try --help).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"

bash infra/local/setup.sh

export PATH="$REPO/.venv/bin:$PATH"
export PSA_BRIDGE_MOTO="$REPO/.venv/bin/moto_server"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL

exec cargo run --release -p psa-bridge-cli -- local "$@"
