#!/usr/bin/env python3
"""No file in src/ over 700 lines and no function over 120 lines outside
tests, unless the allow-lists below say why. Prints the offenders and exits
1; run by `.ci/run`. Functions are found by their `fn` line and measured to
their closing brace (braces in strings and comments are balanced in this
code base; a test module, `#[cfg(test)] mod ...` to the file's end, is left out).
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FILE = 700
MAX_FN = 120
# Path (under src/) -> why it may stay over MAX_FILE lines.
FILES = {
}
# "path::function" -> why it may stay over MAX_FN lines.
FUNCTIONS = {}
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def code_of(text):
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod ", text, re.M)
    return text[: cut.start()] if cut else text


def functions(lines):
    """(name, first line number, length in lines) of each function with a body."""
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            stripped = lines[j].split("//")[0]
            if not opened and ";" in stripped and "{" not in stripped:
                break  # a declaration without a body (a trait's)
            depth += stripped.count("{") - stripped.count("}")
            opened = opened or "{" in stripped
            if opened and depth <= 0:
                out.append((m.group(1), i + 1, j - i + 1))
                break
    return out


def main():
    errors = []
    over_files, over_functions = set(), set()
    for dirpath, _, files in os.walk(SRC):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, SRC)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            n = text.count("\n")
            if n > MAX_FILE:
                over_files.add(rel)
            if n > MAX_FILE and rel not in FILES:
                errors.append(f"src/{rel}: {n} lines (at most {MAX_FILE}, or a reason in scripts/check-sizes.py)")
            for fn, line, length in functions(code_of(text).splitlines()):
                if length > MAX_FN:
                    over_functions.add(f"{rel}::{fn}")
                if length > MAX_FN and f"{rel}::{fn}" not in FUNCTIONS:
                    errors.append(f"src/{rel}:{line}: fn {fn} is {length} lines (at most {MAX_FN}, or a reason)")
    # An allow-list entry that no longer needs to be there goes.
    stale = [f for f in FILES if f not in over_files] + [f for f in FUNCTIONS if f not in over_functions]
    for entry in stale:
        errors.append(f"{entry}: allow-listed but within the limit (or gone): remove it from scripts/check-sizes.py")
    for e in errors:
        print(f"sizes: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
