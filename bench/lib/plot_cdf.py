#!/usr/bin/env python3
"""Latency CDF like the thesis' figures 4.1/4.2, from tinyfaas-bench sample
CSVs (client,seq,start_us,latency_us,ok). The y axis is the share of ALL
calls, so a run with failed calls ends below 1.0.

  plot_cdf.py --out FILE.png [--title T] --curve 'LABEL|CLIENTS|STYLE|FILE.csv' ...

STYLE is a matplotlib line style ('-', '--', ':'); curves with the same
CLIENTS get the same colour."""

import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    p.add_argument("--curve", action="append", default=[], help="LABEL|CLIENTS|STYLE|FILE.csv")
    args = p.parse_args()
    curves = [c.split("|", 3) for c in args.curve]
    counts = sorted({int(c[1]) for c in curves})
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(10, 6))
    for label, clients, style, path in curves:
        latencies = []
        total = 0
        with open(path) as f:
            for row in csv.DictReader(f):
                total += 1
                if row["ok"] == "1":
                    latencies.append(int(row["latency_us"]) / 1000.0)
        if total == 0:
            continue
        latencies.sort()
        # At most ~2000 points per curve, always including the last.
        step = max(1, len(latencies) // 2000)
        idx = list(range(0, len(latencies), step))
        if latencies and idx[-1] != len(latencies) - 1:
            idx.append(len(latencies) - 1)
        xs = [latencies[i] for i in idx]
        ys = [(i + 1) / total for i in idx]
        colour = cmap(counts.index(int(clients)) / max(1, len(counts) - 1) * 0.9)
        ax.plot(xs, ys, style, color=colour, linewidth=1.4, label=f"{label}, {clients} clients")
    ax.set_xscale("log")
    ax.set_xlabel("latency of successful calls (ms, log scale)")
    ax.set_ylabel("fraction of all calls")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(args.title, fontsize=10)
    ax.legend(fontsize=8, ncol=2, loc="best")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
