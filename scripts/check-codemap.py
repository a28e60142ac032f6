#!/usr/bin/env python3
"""The codemap cannot drift from the tree: every path that docs/ARCHITECTURE.md
names under one of the repository's top folders (src/, tests/, scripts/, docs/,
benches/, clients/, fuzz/, deploy/, proto/, migrations/) must exist. Brace lists
(`src/api/{ingest,query}.rs`) name each of their paths; a path git ignores
(what a run makes, such as tests/web/.run/) need not exist. Prints the
missing ones and exits 1; run by `.ci/run`.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DOC = os.path.join(ROOT, "docs", "ARCHITECTURE.md")
PATH = re.compile(
    r"(?<![\w/.-])((?:src|tests|scripts|docs|benches|clients|fuzz|deploy|proto|migrations)/[A-Za-z0-9_./{},*-]*)"
)


def expand(path):
    """The paths a brace list names (one level, as the codemap writes them)."""
    m = re.search(r"\{([^}]*)\}", path)
    if not m:
        return [path]
    return [path[: m.start()] + alt + path[m.end():] for alt in m.group(1).split(",")]


def ignored(path):
    """Whether git ignores `path` (made by a run, never committed)."""
    return subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", path]).returncode == 0


def main():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    missing = set()
    for found in PATH.findall(text):
        found = found.rstrip(".,:;)")
        if "*" in found:
            continue
        for path in expand(found):
            if not os.path.exists(os.path.join(ROOT, path)) and not ignored(path):
                missing.add(path)
    for path in sorted(missing):
        print(f"codemap: docs/ARCHITECTURE.md names {path}, which does not exist", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
