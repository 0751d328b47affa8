#!/usr/bin/env python3
"""check-layers.py: the coordinator's modules call each other only downwards (docs/coordinator.md).

For every coordinator/*.c it collects the other coordinator modules it depends on, two ways:
the coordinator headers it #includes, and the public functions (declared in coordinator/*.h)
whose names it mentions, called or passed as a callback. A file implements the module of its
header (exporter_mhd.c is module exporter). Then it checks:

  1. no loop: the module graph (includes and references together) has no cycle;
  2. the layers: a module depends only on modules of a lower layer, or of its own layer
     (LAYERS below, the table docs/coordinator.md shows);
  3. every module is in the table (a new file must be placed in a layer).

It prints the graph and exits 1 naming every violation, 0 when there is none.

usage: check-layers.py [COORDINATOR_DIR]   (default: coordinator/ next to this script's parent)
"""
import os
import re
import sys

# Lower number = lower layer. Same-layer edges are allowed but must not form a loop.
LAYERS = {
    "store": 0, "store_view": 0, "attempt": 0, "fitter": 0, "launcher": 0, "follow": 0,
    "notify": 0,
    "coord": 1,
    "transition": 2,
    "scheduler": 3, "session": 3, "client": 3, "refit": 3, "target": 3,
    "exporter": 3, "auth": 3, "dashboard": 3,
    "daemon": 4,
    "main": 5,
}

DECL = re.compile(r"^[A-Za-z_][\w \t\*]*?\b([a-z][a-z0-9_]*)\s*\(", re.M)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)
IDENT = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def strip(text):
    """Drops comments and string literals (a name in a log message is not a dependency)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def module_of(path, headers):
    base = os.path.splitext(os.path.basename(path))[0]
    if base in headers:
        return base
    head = base.split("_")[0]
    return head if head in headers else base


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    cdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "coordinator")
    files = sorted(os.listdir(cdir))
    headers = {f[:-2] for f in files if f.endswith(".h")}
    owner = {}  # function name -> module
    # longest name first, so store_view_x() belongs to store_view.h, not store.h
    for h in sorted(headers, key=len, reverse=True):
        with open(os.path.join(cdir, h + ".h")) as fh:
            text = strip(fh.read())
        for m in DECL.finditer(text):
            # declarations only: the statement ends with ';' before any '{'
            rest = text[m.end():]
            semi, brace = rest.find(";"), rest.find("{")
            name = m.group(1)
            # public functions are named module_verb (docs/style.md); this also skips `typedef void (`
            if semi >= 0 and (brace < 0 or semi < brace) and name.startswith(h + "_"):
                owner.setdefault(name, h)
    edges = {}  # module -> {module: why}
    for f in files:
        if not f.endswith(".c"):
            continue
        mod = module_of(f, headers)
        with open(os.path.join(cdir, f)) as fh:
            text = fh.read()
        deps = edges.setdefault(mod, {})
        for inc in INCLUDE.findall(text):
            if inc in headers and inc != mod:
                deps.setdefault(inc, "%s includes %s.h" % (f, inc))
        for name in set(IDENT.findall(strip(text))):
            target = owner.get(name)
            if target and target != mod:
                deps.setdefault(target, "%s uses %s()" % (f, name))
    for h in headers:
        edges.setdefault(h, {})

    errors = []
    for mod in sorted(edges):
        if mod not in LAYERS:
            errors.append("module %s is in no layer (add it to LAYERS and docs/coordinator.md)" % mod)
    for mod in sorted(edges):
        for dep, why in sorted(edges[mod].items()):
            lm, ld = LAYERS.get(mod), LAYERS.get(dep)
            if lm is not None and ld is not None and ld > lm:
                errors.append("upward: %s (layer %d) -> %s (layer %d): %s" % (mod, lm, dep, ld, why))

    # Cycles: depth-first search, reporting each loop once.
    state, stack, seen_loops = {}, [], set()

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                loop = stack[stack.index(d):] + [d]
                key = frozenset(loop)
                if key not in seen_loops:
                    seen_loops.add(key)
                    why = "; ".join(edges[a][b] for a, b in zip(loop, loop[1:]))
                    errors.append("loop: %s (%s)" % (" -> ".join(loop), why))
            elif state.get(d) is None:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if state.get(m) is None:
            visit(m)

    for mod in sorted(edges, key=lambda m: (LAYERS.get(m, 99), m)):
        print("%-10s layer %s -> %s" % (mod, LAYERS.get(mod, "?"),
                                        " ".join(sorted(edges[mod])) or "-"))
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    print("%d modules, %d edges, %d violations" %
          (len(edges), sum(len(v) for v in edges.values()), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
