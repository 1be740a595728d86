#!/usr/bin/env python3
"""Reads `go test -json` on stdin and prints what plain `go test` prints (a line per package, and the whole
output of each failing test), then appends every skipped test with its reason to the file named by the first
argument (scripts/test.sh prints that list at the end). Exits 1 when a test or a build failed.

    go test -json ./... | python3 scripts/go-test-summary.py .cache/test-skipped.txt
"""
import json
import sys

QUIET = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME")


def main() -> int:
    skips_path = sys.argv[1] if len(sys.argv) > 1 else None
    buf = {}  # (package, test) -> output lines
    skipped, failed = [], False
    for line in sys.stdin:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:  # not JSON (a tool's own message): pass it through
            sys.stdout.write(line)
            continue
        action, pkg, test, out = ev.get("Action"), ev.get("Package", ev.get("ImportPath", "")), ev.get("Test"), ev.get("Output", "")
        if action == "build-output":
            sys.stdout.write(out)
        elif action == "build-fail":
            failed = True
        elif action == "output" and test:
            buf.setdefault((pkg, test), []).append(out)
        elif action == "output":
            if out.strip() not in ("PASS", "") and not out.startswith("testing: warning: no tests to run"):
                sys.stdout.write(out)
        elif action == "fail":
            failed = True
            # A failed test prints its output; a failed package also prints that of tests left unfinished (a
            # panic, a timeout or a signal ended the test binary mid-test).
            for key in [k for k in buf if k[0] == pkg and (k[1] == test or not test)]:
                sys.stdout.write("".join(buf.pop(key)))
        elif action == "skip" and test:
            lines = [l.strip() for l in buf.pop((pkg, test), []) if not l.startswith(QUIET) and "--- SKIP" not in l]
            skipped.append(f"go test {pkg} {test}: {' '.join(l for l in lines if l) or '(no reason given)'}")
        elif action == "pass" and test:
            buf.pop((pkg, test), None)
        sys.stdout.flush()
    if skips_path and skipped:
        with open(skips_path, "a", encoding="utf-8") as f:
            f.write("".join(s + "\n" for s in skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
