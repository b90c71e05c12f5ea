#!/usr/bin/env python3
"""Prints the agent's folder-to-folder includes and fails on one that points up the pipeline.

The request pipeline reads one way: kernel (datapath) -> origin -> caller -> binding (policy) -> token -> response
(http), with the side outputs (observe) at the end of each request, the admin views over all of them, and app/
wiring everything. A folder may include its own headers and those of folders below it, never above.
docs/architecture.md draws the same order.

    tools/include-graph.py            # the graph, then "ok" or every upward include; exit 1 on any
    tools/include-graph.py --dot      # the graph for graphviz
    tools/include-graph.py DIR        # another checkout (e.g. an older commit: git archive REV agent | tar -x -C DIR)
"""
import os
import re
import sys
from collections import Counter

# Lowest first. Folders on one line share a rank and may not include each other.
LAYERS = [
    ["common", "podid"],  # cross-cutting helpers; include/podid/abi.h (shared with the BPF programs)
    ["datapath"],         # kernel programs: load, attach, origin records, counters
    ["caller"],           # origin -> cgroup path -> pod reference
    ["kube"],             # API-server client, pod directory; Kubernetes mode's caller resolution
    ["policy"],           # bindings: static file, AAD Pod Identity CRDs, Workload Identity
    ["token"],            # token cache, single-flight, upstream IMDS
    ["entra"],            # Entra ID token exchange (federation, service principals), behind the token cache
    ["http"],             # request classification, the pure IMDS handler, the server
    ["observe"],          # audit log, metrics, health, self-check: what each request leaves behind
    ["admin"],            # podidctl's admin socket and views, /metrics and /readyz endpoints
    ["app"],              # flags and wiring
    ["."],                # main.cpp
]
RANK = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)


def edges(agent_dir):
    found = Counter()
    offenders = []
    for dirpath, _, files in os.walk(agent_dir):
        for name in sorted(files):
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, agent_dir)
            source = os.path.dirname(rel) or "."
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for target in INCLUDE.findall(text):
                if target == source:
                    continue
                found[(source, target)] += 1
                if source not in RANK or target not in RANK:
                    offenders.append(f"{rel}: includes {target}/ (a folder not in the layer list)")
                elif RANK[target] >= RANK[source]:
                    offenders.append(f"{rel}: {source}/ includes {target}/, which is not below it")
    return found, offenders


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found, offenders = edges(os.path.join(root, "agent"))
    if "--dot" in sys.argv:
        print("digraph includes {")
        for (a, b), n in sorted(found.items()):
            print(f'  "{a}" -> "{b}" [label={n}];')
        print("}")
        return 0
    print("agent/ folder includes (files including, per edge), lowest layer last:")
    for source in sorted(RANK, key=lambda f: -RANK[f]):
        targets = sorted(((b, n) for (a, b), n in found.items() if a == source), key=lambda t: -RANK.get(t[0], 99))
        if targets:
            print(f"  {source + '/':10} -> " + ", ".join(f"{b}/ ({n})" for b, n in targets))
    if offenders:
        print(f"\n{len(offenders)} include(s) point up the pipeline (see the layer list in {sys.argv[0]}):")
        for line in offenders:
            print("  " + line)
        return 1
    print("\nok: every include points down the pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
