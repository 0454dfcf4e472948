#!/usr/bin/env python3
"""Summarise a step timeline (anebench --profile-loops --trace PREFIX → PREFIX.<config>.txt).

Per site, averaged over its loops: wall µs; goroutines that ran a part (of w); the goroutines'
time split into parts (busy), deferred parts run in the loop's wait (fill), waiting before their
first part (late: still in a deferred part or in BLAS, or not scheduled) and after their last
(tail); and what ended the loop: the last part's goroutine's start delay and its part count.
idle%: the goroutines' time in the loop's window in which they ran nothing the timeline records
(no part of any loop, no deferred part, no drain): the waits no work filled. gap µs: from the end of
the loop before (in time) to this one's start: the caller's serial code, and in a profiled run the
profile's own work too (anebench's loop table splits the two: "outside loops").
With the part numbers and CPUs the timeline records (from 6 Dec 2026): adj%, of a goroutine's
parts after its first in a loop, those that are the part next to its previous one (consecutive
blocks of a grid share their rows of A: what par.RunHomed deals); moved%, of a goroutine's parts,
those that ran on another CPU than its previous part (any loop).

usage: python3 anert/bench/timeline.py PREFIX.default.txt [--top N]
"""
import bisect
import sys
from collections import defaultdict


def load(path):
    loops, spans = [], []
    for line in open(path):
        f = line.split()
        if f[0] == "loop":
            loops.append(dict(site=f[2], w=int(f[3]), parts=int(f[4]), start=float(f[5]), end=float(f[6])))
        elif f[0] == "span":  # older timelines lack the part and CPU: -1
            part, cpu = (int(f[6]), int(f[7])) if len(f) >= 8 else (-1, -1)
            spans.append((int(f[1]), int(f[2]), f[3], float(f[4]), float(f[5]), part, cpu))
    return loops, spans


def overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def merged(intervals):
    """The union of (start, end) intervals as sorted, disjoint ones."""
    out = []
    for t0, t1 in sorted(intervals):
        if out and t0 <= out[-1][1]:
            out[-1][1] = max(out[-1][1], t1)
        else:
            out.append([t0, t1])
    return out


def covered(runs, starts, a0, a1):
    """How much of [a0, a1) the disjoint sorted runs (with their starts) cover."""
    i = max(0, bisect.bisect_right(starts, a0) - 1)
    c = 0.0
    while i < len(runs) and runs[i][0] < a1:
        c += overlap(runs[i][0], runs[i][1], a0, a1)
        i += 1
    return c


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 20
    loops, spans = load(path)
    by_loop = defaultdict(list)
    fills = defaultdict(list)  # each worker's deferred parts run as filler: (start, end)
    prev_cpu, moved = {}, defaultdict(lambda: [0, 0])  # per site: parts after another CPU, parts
    for s in sorted(spans, key=lambda s: s[3]):
        if s[2] == "part":
            by_loop[s[0]].append(s)
            if s[6] >= 0 and 0 <= s[0] < len(loops):
                m = moved[loops[s[0]]["site"]]
                m[0] += s[1] in prev_cpu and prev_cpu[s[1]] != s[6]
                m[1] += s[1] in prev_cpu
        elif s[2] == "fill":
            fills[s[1]].append((s[3], s[4]))
        if s[6] >= 0:
            prev_cpu[s[1]] = s[6]
    # every goroutine's time in anything the timeline records (parts, deferred parts, drains)
    runs = defaultdict(list)
    for s in spans:
        runs[s[1]].append((s[3], s[4]))
    runs = {k: merged(v) for k, v in runs.items()}
    starts = {k: [r[0] for r in v] for k, v in runs.items()}
    # the gap before each loop: from the end of the loop that ended last before it started
    gap_before, ends = {}, []
    for i in sorted(range(len(loops)), key=lambda i: loops[i]["start"]):
        l = loops[i]
        last = max((e for e in ends if e <= l["start"]), default=None)
        if last is not None:
            gap_before[i] = l["start"] - last
        ends.append(l["end"])
    agg = defaultdict(lambda: defaultdict(float))
    for i, l in enumerate(loops):
        ps = by_loop.get(i, [])
        if not ps or l["w"] < 2:
            continue
        a = agg[l["site"]]
        wall = l["end"] - l["start"]
        a["n"] += 1
        a["wall"] += wall
        a["cap"] += wall * l["w"]
        first, last, count, prev = {}, {}, defaultdict(int), {}
        for _, k, _, t0, t1, part, _ in sorted(ps, key=lambda s: s[3]):
            first[k] = min(first.get(k, t0), t0)
            last[k] = max(last.get(k, t1), t1)
            count[k] += 1
            a["busy"] += t1 - t0
            if part >= 0 and k in prev:
                a["adj"] += abs(part - prev[k]) == 1
                a["after"] += 1
            prev[k] = part
        a["joined"] += len(first)
        if i in gap_before:
            a["gap"] += gap_before[i]
            a["gaps"] += 1
        for k in range(l["w"]):
            a["idle"] += wall - covered(runs.get(k, []), starts.get(k, []), l["start"], l["end"])
            # fill: deferred parts this goroutine ran inside the loop's window (any loop id)
            fill = sum(overlap(t0, t1, l["start"], l["end"]) for t0, t1 in fills[k])
            a["fill"] += fill
            if k in first:
                a["late"] += max(0.0, first[k] - l["start"])
                a["tail"] += max(0.0, l["end"] - last[k])
            else:
                a["absent"] += wall
        kend = max(last, key=lambda k: last[k])
        a["end_delay"] += first[kend] - l["start"]
        a["end_parts"] += count[kend]
        a["parts_per"] += l["parts"] / l["w"]
    rows = sorted(agg.items(), key=lambda kv: -kv[1]["wall"])
    steps_wall = sum(l["end"] - l["start"] for l in loops)
    print(f"{path}: {len(loops)} loops, {steps_wall/1e3:.1f} ms in loops")
    print(f"{'site':>36} {'loops':>5} {'wall µs':>8} {'joined':>6} {'busy%':>5} {'late%':>5} {'tail%':>5}"
          f" {'absent%':>7} {'fill%':>5} {'idle%':>5} {'gap µs':>6} {'parts/w':>7} {'end: start µs, parts':>20} {'adj%':>5} {'moved%':>6}")
    tot = defaultdict(float)
    for site, a in rows[:top]:
        n, cap = a["n"], a["cap"]
        for k in ("cap", "busy", "late", "tail", "absent", "fill", "idle", "gap", "gaps", "adj", "after"):
            tot[k] += a[k]
        mv = moved[site]
        tot["moved"] += mv[0]
        tot["cont"] += mv[1]
        print(f"{site:>36} {n:5.0f} {a['wall']/n:8.1f} {a['joined']/n:6.1f} {100*a['busy']/cap:5.1f}"
              f" {100*a['late']/cap:5.1f} {100*a['tail']/cap:5.1f} {100*a['absent']/cap:7.1f}"
              f" {100*a['fill']/cap:5.1f} {100*a['idle']/cap:5.1f} {a['gap']/max(a['gaps'], 1):6.1f} {a['parts_per']/n:7.2f} {a['end_delay']/n:12.1f}, {a['end_parts']/n:4.2f}"
              f" {pct(a['adj'], a['after']):>5} {pct(mv[0], mv[1]):>6}")
    cap = tot["cap"]
    print(f"{'(these sites)':>36} {'':5} {'':8} {'':6} {100*tot['busy']/cap:5.1f} {100*tot['late']/cap:5.1f}"
          f" {100*tot['tail']/cap:5.1f} {100*tot['absent']/cap:7.1f} {100*tot['fill']/cap:5.1f}"
          f" {100*tot['idle']/cap:5.1f} {tot['gap']/max(tot['gaps'], 1):6.1f} {'':7} {'':18} {pct(tot['adj'], tot['after']):>5} {pct(tot['moved'], tot['cont']):>6}")
    if tot["gaps"]:
        print(f"between loops (these sites): {tot['gap']/1e3:.1f} ms in {tot['gaps']:.0f} gaps")
    print("late: before a goroutine's first part (fill inside it counts in fill too); tail: after its last;"
          " absent: goroutines that ran no part; idle: running nothing recorded; gap: since the loop before ended; adj: a goroutine's next part in a loop is the one next to"
          " its last; moved: a part ran on another CPU than its goroutine's previous part (-: not recorded)")


def pct(n, d):
    return f"{100*n/d:.0f}" if d else "-"


if __name__ == "__main__":
    main()
