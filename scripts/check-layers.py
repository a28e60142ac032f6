#!/usr/bin/env python3
"""The module layering of the server crate, checked from its sources.

Reads every `crate::<module>` reference of each top-level module of `src/`
(comments and `#[cfg(test)]` modules left out) and fails when:
- the modules depend on each other in a cycle;
- `domain` uses any other module of the crate, or `stats` any but `domain`
  (the leaves everything may import: no I/O, no stage);
- `store` uses anything but `domain` and `stats` (no stage is imported by
  the database layer);
- a crate that speaks a transport or a database is named outside its module
  (tonic/prost: `api`, `proto`; sqlx: `store`; redis: `redis`; axum: `web`;
  hyper and http: `api`, `otlp` and `web`; reqwest and lettre: `notify`).
Prints the graph with `-v`.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
LEAVES = {"domain": set(), "stats": {"domain"}}
ALLOWED = {"store": {"domain", "stats"}}
# Crate -> the top-level modules that may name it (app wires them up).
OWNERS = {
    "tonic": {"api", "otlp", "proto", "app"},
    "prost": {"api", "otlp", "proto", "app", "wire"},
    "sqlx": {"store"},
    "redis": {"redis"},
    "axum": {"web"},
    # HTTP itself: the doors that speak it (gRPC in api, OTLP in otlp, the HTTP port in web).
    "hyper": {"api", "otlp", "web"},
    "hyper_util": {"api", "otlp", "web"},
    "http": {"api", "otlp", "web"},
    "http_body": {"api", "otlp", "web"},
    "http_body_util": {"api", "otlp", "web"},
    # Outbound messages: only the notification senders.
    "reqwest": {"notify"},
    "lettre": {"notify"},
}


def code_of(text):
    """The text without `#[cfg(test)]` modules and comments."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod ", text, re.M)
    if cut:
        text = text[: cut.start()]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def use_trees(code):
    """The first segment of every path in `use crate::{...}` trees."""
    names = set()
    for m in re.finditer(r"\buse\s+crate::(\{.*?\}|\w+)\s*;", code, re.S):
        tree = m.group(1)
        depth = 0
        expecting = True
        for token in re.findall(r"\w+|[{},]|::", tree):
            if token == "{":
                depth += 1
                expecting = depth == 1
            elif token == "}":
                depth -= 1
            elif token == ",":
                expecting = depth <= 1
            elif token != "::":
                if expecting and depth <= 1:
                    names.add(token)
                expecting = False
    return names


def main():
    verbose = "-v" in sys.argv
    modules = {}
    crates_named = {}
    for dirpath, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, SRC)
            top = rel.split(os.sep)[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            with open(path, encoding="utf-8") as f:
                code = code_of(f.read())
            deps = set(re.findall(r"\bcrate::(\w+)", code)) | use_trees(code)
            modules.setdefault(top, set()).update(deps)
            for crate in OWNERS:
                if re.search(rf"(?<![\w:]){crate}::", code):
                    crates_named.setdefault(crate, set()).add((top, rel))
    known = set(modules)
    graph = {m: sorted(d for d in deps if d in known and d != m) for m, deps in modules.items()}
    errors = []
    for leaf, allowed in LEAVES.items():
        for d in graph.get(leaf, []):
            if d not in allowed:
                errors.append(f"{leaf} uses {d}: it is a leaf (allowed: {sorted(allowed) or 'nothing'})")
    for module, allowed in ALLOWED.items():
        for d in graph.get(module, []):
            if d not in allowed:
                errors.append(f"{module} uses {d} (allowed: {sorted(allowed)})")
    for crate, owners in OWNERS.items():
        for top, rel in sorted(crates_named.get(crate, ())):
            if top not in owners:
                errors.append(f"src/{rel} names {crate}:: (only {sorted(owners)} may)")
    # Cycles: depth-first search for a back edge.
    state = {}
    stack = []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in graph[m]:
            if state.get(d) == "open":
                errors.append("cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    if verbose or errors:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(graph[m]) or '-'}")
    for e in errors:
        print(f"layering: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
