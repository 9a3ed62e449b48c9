#!/usr/bin/env python3
"""The module graph of src/ from the code's own imports, and its circles (run by .ci/run).

Every `use crate::…`, `use super::…` and path written out in full (`crate::a::b`, `super::x`),
and a path that starts with a module a `use` named (`use super::{admin}` … `admin::notify`),
is an edge from the file's module to the deepest module it names; tests are left out. A file's
own ancestors are not edges (a submodule may name its parent's items). Exits 1 when the graph
has a circle, naming each one; `--edges` prints the graph.

Rooms: inside src/proxy/, each folder and each top-level file is one room. Grouped by room, the
imports must form no circle either, so the rooms are layers and a lower one never names a higher
one (ARCHITECTURE.md draws the order). Exits 1 naming each circle and the imports that close it;
`--rooms` prints the rooms bottom up.

    scripts/imports.py [--edges] [--rooms]
"""
import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
mods = {}
for d, _, files in os.walk(ROOT):
    for f in files:
        if f.endswith(".rs"):
            p = os.path.join(d, f)
            m = os.path.relpath(p, ROOT)[:-3].replace(os.sep, "::")
            if m.endswith("::mod"):
                m = m[:-5]
            mods["crate" if m == "main" else m] = p


def resolve(path, cur):
    """The deepest module `path` (as written in module `cur`) names, if it is one of ours."""
    parts = path.split("::")
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] == "super":
        base = [] if cur == "crate" else cur.split("::")
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
    elif parts[0] == "self":
        base, parts = cur.split("::"), parts[1:]
    else:
        return None
    for i in range(len(parts), -1, -1):
        cand = "::".join(base + parts[:i])
        if cand in mods:
            return cand
    return None


def expand(tree):
    """`a::{b, c::{d}}` as its paths."""
    m = re.match(r"^(.*?)\{(.*)\}$", tree.strip(), re.S)
    if not m:
        return [tree.strip()]
    pre, inner, items, depth, cur = m.group(1), m.group(2), [], 0, ""
    for ch in inner:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [pre + e for it in items if it.strip() for e in expand(it.strip())]


edges = collections.defaultdict(set)
for m, p in mods.items():
    src = open(p, encoding="utf-8").read()
    cut = src.find("#[cfg(test)]\nmod tests")
    src = re.sub(r"//[^\n]*", "", src if cut < 0 else src[:cut])

    def add(t):
        if t and t != m and not m.startswith(t + "::"):
            edges[m].add(t)

    alias = {}
    for u in re.findall(r"\buse\s+([^;]+);", src, re.S):
        for e in expand(re.sub(r"\s+", "", u)):
            e = e.split(" as ")[0].replace("::self", "")
            t = resolve(e, m)
            add(t)
            if t and t.split("::")[-1] == e.split("::")[-1]:
                alias[e.split("::")[-1]] = t
    for name, mod in alias.items():
        for rest in re.findall(r"\b" + name + r"((?:::\w+)+)", src):
            parts = (mod + rest).split("::")
            add(next(("::".join(parts[:i]) for i in range(len(parts), 0, -1) if "::".join(parts[:i]) in mods), None))
    for u in re.findall(r"\b((?:crate|super)(?:::\w+)+)", src):
        add(resolve(u, m))

if "--edges" in sys.argv:
    for m in sorted(edges):
        for t in sorted(edges[m]):
            print(m, "->", t)

# Circles: the strongly connected components of more than one module (Tarjan).
sys.setrecursionlimit(10000)
index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges_of.get(v, ()):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            circles.append(sorted(comp))


def components(graph, nodes):
    """The strongly connected components of more than one node (Tarjan)."""
    index.clear(), low.clear(), stack.clear(), on.clear(), circles.clear()
    counter[0] = 0
    global edges_of
    edges_of = graph
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return list(circles)


edges_of = edges
file_circles = components(edges, mods)
for c in file_circles:
    print("imports: a circle:", " <-> ".join(c), file=sys.stderr)


def room(m):
    """The room of a module inside proxy (`proxy::client::conn` -> `client`), else None."""
    parts = m.split("::")
    return parts[1] if parts[0] == "proxy" and len(parts) > 1 else None


room_edges, why = collections.defaultdict(set), collections.defaultdict(list)
for m, ts in edges.items():
    for t in ts:
        a, b = room(m), room(t)
        if a and b and a != b:
            room_edges[a].add(b)
            why[(a, b)].append(f"{m} -> {t}")
rooms = {room(m) for m in mods if room(m)}
room_circles = components(room_edges, rooms)
for c in room_circles:
    print("imports: rooms in a circle (src/proxy/):", " <-> ".join(c), file=sys.stderr)
    for a in c:
        for b in c:
            for w in why.get((a, b), ()):
                print("    ", w, file=sys.stderr)
if "--rooms" in sys.argv and not room_circles:
    # Bottom up: a room after every room it names.
    done, order = set(), []
    while len(order) < len(rooms):
        ready = sorted(r for r in rooms - done if room_edges[r] <= done)
        order.extend(ready)
        done.update(ready)
    for r in order:
        print(f"{r:12} -> {', '.join(sorted(room_edges[r])) or '-'}")
print(
    f"imports: {len(mods)} modules, {sum(len(v) for v in edges.values())} imports, {len(file_circles)} circles;"
    f" {len(rooms)} rooms in src/proxy/, {len(room_circles)} circles"
)
sys.exit(1 if file_circles or room_circles else 0)
