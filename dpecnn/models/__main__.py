"""``python -m dpecnn.models [--layout 8,16,32]``: parameter table of every architecture."""

import argparse

from dpecnn.models import DEFAULT_LAYOUT, parameter_table, parse_layout


def format_table(rows: list[dict]) -> str:
    lines = [f"{'arch':<5} {'params':>9} {'paper':>9}"]
    for r in rows:
        paper = f"{r['paper']:,}" if r["paper"] else "-"
        lines.append(f"{r['arch']:<5} {r['params']:>9,} {paper:>9}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", default=",".join(map(str, DEFAULT_LAYOUT)))
    args = parser.parse_args()
    print(format_table(parameter_table(parse_layout(args.layout))))
