"""Validates EMF documents (one a line on standard input) against tests/emf/schema.json; exits 1 on the first
invalid one, naming it."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parent / "schema.json").read_text())
validator = jsonschema.Draft7Validator(schema)
count = 0
for number, line in enumerate(sys.stdin, 1):
    if not line.strip():
        continue
    document = json.loads(line)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        print(f"document {number} is invalid: {errors[0].message} at {list(errors[0].path)}", file=sys.stderr)
        sys.exit(1)
    count += 1
print(f"{count} documents valid")
