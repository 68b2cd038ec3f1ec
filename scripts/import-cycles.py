#!/usr/bin/env python3
"""Lists `use` cycles between the modules of Percore's crates; exits 1 if there is one.

A module may use its ancestors (`super::`) and its own children freely. Between siblings —
two modules under the same parent, at any depth — references must go one way: if anything in
`a` (its file and its submodules) names something in sibling `b`, nothing in `b` may name
something in `a`. The check reads every path a file names, in `use` items and inline
(`crate::…`, `super::…`, `self::…`), from the crate's library source (binaries are separate
crates; `#[cfg(test)]` modules are test code and are left out).

Usage: scripts/import-cycles.py [CRATE_DIR ...]   (default: every library crate)
"""

import os
import re
import sys
from collections import defaultdict

DEFAULT_CRATES = ["core-shard", "net", "pd", "raftstore", "bench", "tests"]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line) for line in text.split("\n"))


def strip_test_modules(text):
    """Drops `#[cfg(test)] mod name { … }` blocks (brace matched)."""
    out, i = [], 0
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out.append("\n" * text[m.start() : j].count("\n"))
        i = j


def module_files(src):
    """Maps module paths (tuples) to their files, following `mod` declarations from the root."""
    root = "lib.rs" if os.path.exists(os.path.join(src, "lib.rs")) else "main.rs"
    files = {}

    def visit(path, modpath, dirpath):
        files[modpath] = path
        with open(path) as f:
            text = strip_comments(f.read())
        decl = re.compile(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;")
        for m in decl.finditer(text):
            attrs, name = m.group(1), m.group(2)
            if "cfg(test)" in attrs:
                continue
            explicit = re.search(r'path\s*=\s*"([^"]+)"', attrs)
            if explicit:
                child = os.path.join(os.path.dirname(path), explicit.group(1))
            else:
                child = os.path.join(dirpath, name + ".rs")
                if not os.path.exists(child):
                    child = os.path.join(dirpath, name, "mod.rs")
            if os.path.exists(child):
                visit(child, modpath + (name,), os.path.join(dirpath, name))

    visit(os.path.join(src, root), (), src)
    return files


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (as lists of segments)."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        if "{" not in s:
            s = re.sub(r"\bas\w+$", "", s)
            return [prefix + [seg for seg in s.split("::") if seg]]
        head, rest = s.split("{", 1)
        inner = rest[: rest.rfind("}")]
        base = prefix + [seg for seg in head.split("::") if seg]
        out = []
        for part in split_top(inner):
            out.extend(walk(base, part))
        return out

    return walk([], tree)


def referenced_paths(text, modpath):
    """Absolute segment lists of every crate path the text names."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand_use(m.group(1)):
            paths.append((p, text.count("\n", 0, m.start()) + 1))
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
        paths.append((m.group(1).split("::"), text.count("\n", 0, m.start()) + 1))
    out = []
    for segs, line in paths:
        if not segs:
            continue
        if segs[0] == "crate":
            out.append((tuple(segs[1:]), line))
        elif segs[0] in ("super", "self"):
            base = list(modpath)
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super" and base:
                    base.pop()
                segs = segs[1:]
            out.append((tuple(base + segs), line))
    return out


def resolve(path, modules):
    """The deepest module a path goes through."""
    best = ()
    for i in range(1, len(path) + 1):
        if path[:i] in modules:
            best = path[:i]
        else:
            break
    return best


def tarjan(nodes, edges):
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    for v in nodes:
        if v not in index:
            strong(v)
    return sccs


def check(crate):
    src = os.path.join(crate, "src")
    files = module_files(src)
    modules = set(files)
    # (parent, child_a, child_b) -> first evidence
    edges = defaultdict(dict)
    for modpath, path in files.items():
        with open(path) as f:
            text = strip_test_modules(strip_comments(f.read()))
        for target_path, line in referenced_paths(text, modpath):
            target = resolve(target_path, modules)
            n = 0
            while n < min(len(modpath), len(target)) and modpath[n] == target[n]:
                n += 1
            if n == len(target) or n == len(modpath):
                continue  # an ancestor, or one of its own descendants
            parent, a, b = modpath[:n], modpath[n], target[n]
            key = (a, b)
            if key not in edges[parent]:
                edges[parent][key] = f"{os.path.relpath(path)}:{line} -> {'::'.join(target) or 'crate'}"
    cycles = []
    for parent, pairs in sorted(edges.items()):
        graph = defaultdict(set)
        for a, b in pairs:
            graph[a].add(b)
        for scc in tarjan(sorted(graph), graph):
            where = "::".join(parent) or "crate"
            members = set(scc)
            evidence = [e for (a, b), e in sorted(pairs.items()) if a in members and b in members]
            cycles.append((where, scc, evidence))
    return len(files), cycles


def main():
    crates = sys.argv[1:] or DEFAULT_CRATES
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(top)
    found = 0
    for crate in crates:
        count, cycles = check(crate)
        print(f"{crate}: {count} modules, {len(cycles)} cycle(s)")
        for where, scc, evidence in cycles:
            found += 1
            print(f"  cycle under {crate}::{where}: {' <-> '.join(scc)}")
            for e in evidence:
                print(f"    {e}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
