#!/usr/bin/env python3
"""Checks that every CTest label of a build folder has at least the tests tests/test_counts.txt
says (the Release column, or the sanitizer column for a build with MNIST_SANITIZE), and that no
registered test is left without a label. Usage: check_test_counts.py BUILD_DIR. Exit 1, naming the
label, when one has fewer."""
import os
import re
import subprocess
import sys


def main():
    build = sys.argv[1]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    sanitized = re.search(r"^MNIST_SANITIZE:BOOL=ON$", cache, re.M) is not None
    column = 2 if sanitized else 1
    floors = {}
    for line in open(os.path.join(repo, "tests", "test_counts.txt")):
        fields = line.split("#", 1)[0].split()
        if fields:
            floors[fields[0]] = int(fields[column])
    listing = subprocess.run(["ctest", "--test-dir", build, "-N", "--show-only=json-v1"],
                             check=True, capture_output=True, text=True).stdout
    import json
    tests = json.loads(listing)["tests"]
    counts = {label: 0 for label in floors}
    unlabelled = []
    for t in tests:
        labels = []
        for p in t.get("properties", []):
            if p["name"] == "LABELS":
                labels = p["value"]
        if not labels and t["name"] != "shared_dirs_reset":
            unlabelled.append(t["name"])
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    errors = [f"label {label}: {counts.get(label, 0)} tests, fewer than the floor of {floor} "
              f"(tests/test_counts.txt)" for label, floor in floors.items() if counts.get(label, 0) < floor]
    errors += [f"test {name} has no label" for name in unlabelled]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    kind = "sanitizer" if sanitized else "Release"
    print(f"test counts ({kind} build): " + ", ".join(f"{k} {counts.get(k, 0)}" for k in floors))


if __name__ == "__main__":
    main()
