#!/usr/bin/python3
"""check-calls.py: no two source files of the programs call each other in a loop (issue 13).

Reads the symbols each object file of build/obj/ (common/, common/net/, gateway/, broker/)
defines and uses (`nm`), draws an edge A -> B when A uses a symbol B defines, and reports every
strongly connected group of more than one file with the symbols that close it. Callbacks passed
as function pointers at run time are not edges: that is how a lower layer calls a higher one.
Prints one "check-calls: N passed, M failed" line for tests/run.sh (N files in no loop, M loops).
"""
import collections
import glob
import os
import subprocess
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
objs = sorted(o for d in ("common", "gateway", "broker")
              for o in glob.glob("build/obj/%s/**/*.o" % d, recursive=True))
if not objs:
    print("check-calls: no object files under build/obj (run make first)", file=sys.stderr)
    print("check-calls: 0 passed, 1 failed")
    sys.exit(1)
defs, uses = {}, collections.defaultdict(set)
for o in objs:
    out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRC":
            defs[parts[2]] = o
        elif len(parts) == 2 and parts[0] == "U":
            uses[o].add(parts[1])
# main_*.o each define main: programs are separate, and nothing calls into a main file
edges = {o: sorted({defs[s] for s in uses[o] if s in defs and defs[s] != o}) for o in objs}

# Tarjan's strongly connected components, iteratively
index, low, on_stack, stack, groups, counter = {}, {}, set(), [], [], [0]
for root in objs:
    if root in index:
        continue
    work = [(root, 0)]
    while work:
        v, i = work.pop()
        if i == 0:
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on_stack.add(v)
        for j in range(i, len(edges[v])):
            w = edges[v][j]
            if w not in index:
                work.append((v, j + 1))
                work.append((w, 0))
                break
            if w in on_stack:
                low[v] = min(low[v], index[w])
        else:
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])

name = lambda o: o[len("build/obj/"):-2] + ".c"
in_loops = set()
for g in groups:
    in_loops.update(g)
    print("call loop: " + " <-> ".join(name(o) for o in g), file=sys.stderr)
    for a in g:
        for b in edges[a]:
            if b in g:
                syms = sorted(s for s in uses[a] if defs.get(s) == b)
                print("  %s calls %s: %s" % (name(a), name(b), ", ".join(syms[:5])), file=sys.stderr)
print("check-calls: %d passed, %d failed" % (len(objs) - len(in_loops), len(groups)))
sys.exit(1 if groups else 0)
