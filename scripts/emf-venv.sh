#!/usr/bin/env bash
# The EMF reference for tests/emf_reference.rs: AWS's own aws-embedded-metrics (Python) and jsonschema, in a
# venv of their own (idempotent, fast when done). Prints the venv's python last.
#
# Env: EMF_VENV (<repo>/target/emf-venv), EMF_PYTHON_BASE (the Python to make it with; default python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EMF_VENV:-$REPO/target/emf-venv}"
CONSTRAINTS="$REPO/scripts/emf-constraints.txt"
MARKER="$VENV/.emf-pins"
want="$(cksum <"$CONSTRAINTS")"
if [[ ! -x "$VENV/bin/python" || ! -f "$MARKER" || "$(cat "$MARKER")" != "$want" ]]; then
  echo "emf-venv.sh: installing aws-embedded-metrics and jsonschema into $VENV" >&2
  rm -rf "$VENV"
  "${EMF_PYTHON_BASE:-python3}" -m venv "$VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" aws-embedded-metrics jsonschema >&2
  echo "$want" >"$MARKER"
fi
echo "$VENV/bin/python"
