#!/usr/bin/python3
"""bench-report.py DIR - turn the Google Benchmark JSON of scripts/bench.sh into a report.

Reads DIR/*.json, writes DIR/report.md (one row per case: numabuddy, kernel, ratio) and
DIR/latency.png (latency vs size, one line per allocator).

Benchmark names are "<case>/<param>/<allocator>" (userspace/bench/bench_common.h); allocators
starting with "numabuddy" are ours. Each kernel row is paired with the numabuddy row of the
same case and param (the one with the same "-suffix" when there are several). The ratio is
kernel time / numabuddy time: above 1 numabuddy is faster, below 1 it is slower, and the row
says so in words. Only ratios mean anything: the VM runs under QEMU TCG.
"""
import json
import os
import re
import sys

# Files from another boot of the same programs, and what sets that boot apart.
BOOT_TAGS = {"kernel-noinit": "init_on_alloc=0"}
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Per-unit counters, preferred over the raw iteration time when present.
PER_UNIT = ("pair_ns", "per_page_ns", "per_read_ns")
FILE_NOTES = {
    "kernel": "init_on_alloc=1 (Debian default: alloc_pages zeroes)",
    "kernel-noinit": "init_on_alloc=0 (neither side zeroes)",
}


def parse_size(param):
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)", param)
    if m:
        return int(m.group(1)) << {"KiB": 10, "MiB": 20, "GiB": 30}[m.group(2)]
    m = re.fullmatch(r"order(\d+)", param)
    if m:
        return 4096 << int(m.group(1))
    return None


def fmt_ns(ns):
    if ns is None:
        return "-"
    for unit, div in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def load(directory):
    """Rows: dict(file, case, param, alloc, ns, metric, label, error, counters)."""
    rows = []
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".json") or fn == "core.json":
            continue
        tag = fn[:-5]
        try:
            data = json.load(open(os.path.join(directory, fn)))
        except ValueError:
            continue
        benches = data.get("benchmarks", [])
        # With --benchmark_repetitions the median of the repetitions stands for the case.
        medians = {b["run_name"] for b in benches if b.get("aggregate_name") == "median"}
        done = set()
        for b in benches:
            run = b.get("run_name", b["name"])
            if run in medians:
                if b.get("aggregate_name") != "median":
                    continue
            elif b.get("run_type", "iteration") != "iteration" or run in done:
                continue
            done.add(run)
            name = re.sub(r"/(iterations:\d+|manual_time|real_time|threads:\d+|repeats:\d+)", "", run)
            parts = name.split("/")
            if len(parts) != 3:
                continue
            case, param, alloc = parts
            # The same case from another boot (kernel-noinit) is named after that boot.
            if tag in BOOT_TAGS:
                case = f"{case} [{BOOT_TAGS[tag]}]"
            row = dict(file=tag, case=case, param=param, alloc=alloc, label=b.get("label", ""),
                       error=b.get("error_message") if b.get("error_occurred") else None,
                       counters={k: v for k, v in b.items() if isinstance(v, (int, float))})
            metric = next((c for c in PER_UNIT if c in b), None)
            if metric:
                row["ns"], row["metric"] = float(b[metric]), metric.replace("_ns", "")
            else:
                row["ns"] = float(b["real_time"]) * UNIT_NS.get(b.get("time_unit", "ns"), 1)
                row["metric"] = "per op"
            rows.append(row)
    return rows


def pair(rows):
    """Yield (numabuddy_row, kernel_row) for every kernel row with a numabuddy partner."""
    groups = {}
    for r in rows:
        groups.setdefault((r["case"], r["param"]), []).append(r)
    for (case, param), rs in groups.items():
        ours = [r for r in rs if r["alloc"].startswith("numabuddy")]
        theirs = [r for r in rs if not r["alloc"].startswith("numabuddy")]
        for k in theirs:
            suffix = k["alloc"].split("-", 1)[1] if "-" in k["alloc"] else None
            match = [n for n in ours if suffix and n["alloc"].endswith("-" + suffix)]
            plain = [n for n in ours if n["alloc"] == "numabuddy"]
            n = (match or plain or ours or [None])[0]
            yield n, k
        # The mapping-size effect inside one allocator (tlb cases): 4K vs 2M entries.
        if case.startswith("tlb_"):
            for a, b in (("numabuddy-4K", "numabuddy-2M"), ("anon-4K", "hugetlb-2M")):
                ra = next((r for r in rs if r["alloc"] == a), None)
                rb = next((r for r in rs if r["alloc"] == b), None)
                if ra and rb:
                    yield dict(rb, tlb_pair=True), ra


def ok(r):
    return r is not None and r["error"] is None


def success(r):
    return r["counters"].get("success_pct") if r else None


def describe(n, k):
    """(ratio, sentence) for one pair; ratio = kernel / numabuddy."""
    if n is None:
        return None, "no numabuddy counterpart"
    if not ok(n) or not ok(k):
        who = n if not ok(n) else k
        return None, f"{who['alloc']} failed: {who['error']}"
    sn, sk = success(n), success(k)
    if sn is not None and sk is not None:
        if sk == 0 and sn > 0:
            return None, f"the kernel could not provide it (0% success); numabuddy {sn:.0f}%"
        if sn == 0 and sk > 0:
            return None, f"numabuddy failed every attempt; {k['alloc']} {sk:.0f}%"
        if sn == 0 and sk == 0:
            return None, "neither succeeded"
    ratio = k["ns"] / n["ns"] if n["ns"] > 0 else None
    if ratio is None:
        return None, ""
    if n.get("tlb_pair"):
        return ratio, f"2 MiB entries are {ratio:.2f}x as fast as 4 KiB ones ({n['alloc']} vs {k['alloc']})"
    if ratio < 0.95:
        return ratio, f"**numabuddy is {1 / ratio:.2f}x slower than {k['alloc']} here.**"
    if ratio <= 1.05:
        return ratio, "on par"
    return ratio, f"numabuddy {ratio:.2f}x faster"


def value(r):
    if r is None:
        return "-"
    if not ok(r):
        return "error"
    s = fmt_ns(r["ns"])
    if r["metric"] != "per op":
        s += f" /{r['metric'].replace('per_', '')}"
    if success(r) is not None:
        s += f" ({success(r):.0f}% ok)"
    return s


def goals(pairs):
    """The goals of issue 6, checked against this run's ratios."""
    def find(case, param, kalloc):
        for n, k in pairs:
            if k["case"] == case and k["param"] == param and k["alloc"] == kalloc and not n.get("tlb_pair"):
                return describe(n, k)[0], n, k
        return None, None, None

    out = []
    for label, case, param, kalloc, want in (
        ("in-kernel order-0 >= 2x alloc_pages_node (init_on_alloc=1)", "kernel_alloc_free", "order0", "alloc_pages", 2),
        ("in-kernel order-0 >= 2x alloc_pages_node (init_on_alloc=0)", "kernel_alloc_free [init_on_alloc=0]", "order0", "alloc_pages", 2),
        ("in-kernel order-9 >= 5x alloc_pages_node (init_on_alloc=1)", "kernel_alloc_free", "order9", "alloc_pages", 5),
        ("in-kernel order-9 >= 5x alloc_pages_node (init_on_alloc=0)", "kernel_alloc_free [init_on_alloc=0]", "order9", "alloc_pages", 5),
        ("2 MiB alloc+map+touch+free >= 1.5x MAP_HUGETLB", "alloc_map_touch_free", "2MiB", "hugetlb", 1.5),
        ("first-touch fault no costlier than anonymous (4 KiB)", "first_touch", "4KiB", "anon", 1.0),
        ("first-touch fault no costlier than hugetlb (2 MiB)", "first_touch", "2MiB", "hugetlb", 1.0),
        ("migration >= 2x move_pages throughput (64 MiB)", "migrate", "64MiB", "move_pages", 2),
        ("migration >= 2x move_pages throughput (2 MiB)", "migrate", "2MiB", "move_pages", 2),
    ):
        ratio, n, k = find(case, param, kalloc)
        if ratio is None:
            out.append(f"| {label} | not measured | - |")
        else:
            out.append(f"| {label} | {ratio:.2f}x | {'met' if ratio >= want * 0.999 else 'MISSED'} |")
    for n, k in pairs:
        if k["case"] == "contig_frag50" and k["param"] == "256MiB" and n:
            s = success(n)
            out.append(f"| contiguous 256 MiB after fragmentation (50% fill): 100% | "
                       f"{'-' if s is None else f'{s:.0f}%'} | {'met' if s == 100 else 'MISSED'} |")
            break
    return out


def core_table(directory):
    path = os.path.join(directory, "core.json")
    if not os.path.exists(path):
        return ["(no hosted core bench: userspace/bench/core_bench.cpp is not in the tree yet)"]
    try:
        data = json.load(open(path))
    except ValueError:
        return ["(core.json is not valid JSON)"]
    out = ["| benchmark | time per iteration | items/s |", "|---|---|---|"]
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        ns = float(b["real_time"]) * UNIT_NS.get(b.get("time_unit", "ns"), 1)
        ips = b.get("items_per_second")
        out.append(f"| {b['name']} | {fmt_ns(ns)} | {'-' if ips is None else f'{ips:.3g}'} |")
    return out


def context_lines(directory):
    out = []
    for fn in sorted(os.listdir(directory)):
        if fn.endswith(".json") and fn != "core.json":
            try:
                ctx = json.load(open(os.path.join(directory, fn))).get("context", {})
            except ValueError:
                continue
            extra = {k: v for k, v in ctx.items() if k in ("zeroing", "fragmentation", "bench_node",
                                                            "bench_cpu", "library_build_type")}
            note = FILE_NOTES.get(fn[:-5], "")
            out.append(f"- `{fn}`: {note + '; ' if note else ''}"
                       + "; ".join(f"{k}: {v}" for k, v in extra.items()))
    return out


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    panels = (
        (axes[0], lambda c: c == "alloc_map_touch_free",
         "alloc + map + touch + free (user space)", "allocation size"),
        (axes[1], lambda c: c.startswith("kernel_alloc_free") and "allcpus" not in c,
         "in-kernel alloc+free pair (NB_IOC_BENCH, one CPU)", "block size (order)"),
    )
    for ax, want, title, xlabel in panels:
        lines = {}
        for r in rows:
            if not want(r["case"]) or not ok(r) or parse_size(r["param"]) is None:
                continue
            key = r["alloc"]
            if "[" in r["case"]:
                key += " (" + r["case"][r["case"].index("[") + 1:-1] + ")"
            elif r["case"].startswith("kernel_alloc_free"):
                key += " (init_on_alloc=1)"
            lines.setdefault(key, []).append((parse_size(r["param"]), r["ns"]))
        for key, pts in sorted(lines.items()):
            pts.sort()
            style = "-o" if key.startswith("numabuddy") else "--s"
            ax.plot([p[0] for p in pts], [p[1] / 1e3 for p in pts], style, label=key)
        sizes = sorted({p[0] for pts in lines.values() for p in pts})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([fmt_size(s) for s in sizes], rotation=30)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("latency, us (QEMU TCG: compare lines, not values)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("numabuddy vs the kernel's page allocator, one 4-node QEMU/TCG VM run; lower is better",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def fmt_size(b):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return f"{b >> shift} {unit}"
    return f"{b} B"


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "build/bench"
    rows = load(directory)
    if not rows:
        print(f"bench-report: no benchmark JSON in {directory}", file=sys.stderr)
        return 1
    pairs = list(pair(rows))
    md = ["# numabuddy vs the kernel: benchmark report", "",
          "Generated by `scripts/bench-report.py` from the JSON of one `scripts/bench.sh` run. "
          "Every number comes from QEMU TCG (emulated CPU): only the **ratio** column means "
          "anything, and only because both sides ran in the same VM boot. "
          "Ratio = kernel time / numabuddy time: above 1 numabuddy is faster.", "",
          "## Runs", ""] + context_lines(directory) + [
          "", "## Goals (issue 6)", "", "| goal | this run | |", "|---|---|---|"] + goals(pairs) + [
          "", "## All cases", "",
          "| case | param | numabuddy | kernel alternative | kernel | ratio | note |",
          "|---|---|---|---|---|---|---|"]
    for n, k in pairs:
        ratio, sentence = describe(n, k)
        label = " ".join(x for x in ((n or {}).get("label", ""), k.get("label", "")) if x)
        nname = n["alloc"] if n else "-"
        md.append(f"| {k['case']} | {k['param']} | {nname}: {value(n)} | {k['alloc']} | {value(k)} | "
                  f"{'-' if ratio is None else f'{ratio:.2f}'} | {sentence}"
                  f"{' (' + label + ')' if label else ''} |")
    unpaired = [r for r in rows if r["alloc"].startswith("numabuddy")
                and not any(n is r for n, _ in pairs)]
    for r in unpaired:
        md.append(f"| {r['case']} | {r['param']} | {r['alloc']}: {value(r)} | - | - | - | no kernel counterpart |")
    md += ["", "## Hosted mm_core bench (no kernel counterpart; host CPU, not TCG)", ""] + core_table(directory)
    md += ["", "![latency vs size](latency.png)", ""]
    open(os.path.join(directory, "report.md"), "w").write("\n".join(md))
    plot(rows, os.path.join(directory, "latency.png"))
    print(f"bench-report: {len(pairs)} rows -> {directory}/report.md, {directory}/latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
