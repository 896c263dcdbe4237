#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Check keel's generated manifest JSON Schema: valid JSON, a valid draft 2020-12 schema, and it
# accepts/rejects the given YAML files. Exit 77 when jsonschema or PyYAML is missing (only JSON checked).
import json
import sys


def main():
    args = sys.argv[1:]
    with open(args[0]) as f:
        schema = json.load(f)  # raises on invalid JSON -> exit 1
    try:
        import jsonschema
        import yaml
    except ImportError:
        return 77
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    mode, bad = None, []
    for a in args[1:]:
        if a in ("--valid", "--invalid"):
            mode = a
            continue
        with open(a) as f:
            doc = yaml.safe_load(f)
        errors = list(v.iter_errors(doc))
        if mode == "--valid" and errors:
            bad.append(f"{a}: rejected: {errors[0].message}")
        if mode == "--invalid" and not errors:
            bad.append(f"{a}: accepted, but should be rejected")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
