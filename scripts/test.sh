#!/usr/bin/env bash
# Runs every test: installs and starts the local CloudWatch (LocalStack) on loopback, runs the whole cargo test
# suite including the CloudWatch integration tests against it, then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint=$(scripts/localstack.sh start | tail -n 1)
trap 'scripts/localstack.sh stop' EXIT

export CLOUDWATCH_TEST_ENDPOINT="$endpoint"
# Build everything once, then run every test (the CloudWatch ones are #[ignore]d without a server).
cargo test -p cloudwatch-counters --all-targets -- --include-ignored
cargo test -p cloudwatch-counters --doc
