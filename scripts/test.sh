#!/usr/bin/env bash
# Runs every test: installs and starts the local CloudWatch (LocalStack) on loopback, installs AWS's
# aws-embedded-metrics (the EMF reference), runs the whole cargo test suite including the CloudWatch and EMF
# integration tests, then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint=$(scripts/localstack.sh start | tail -n 1)
trap 'scripts/localstack.sh stop' EXIT

export CLOUDWATCH_TEST_ENDPOINT="$endpoint"
# AWS's aws-embedded-metrics and jsonschema, for the EMF differential and schema tests.
EMF_PYTHON="$(scripts/emf-venv.sh | tail -n 1)"
export EMF_PYTHON
# Build everything once, then run every test (the CloudWatch ones are #[ignore]d without a server).
cargo test -p cloudwatch-counters --all-targets -- --include-ignored
cargo test -p cloudwatch-counters --doc
