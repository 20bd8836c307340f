"""``python -m dpecnn.models [--layout 8,16,32] [--fields layout|fixed-params|all]
[--readout invariant|orientation]``: fields and parameters of every architecture, beside the
paper's counts."""

import argparse

from dpecnn.models import DEFAULT_LAYOUT, FIELD_RULES, READOUTS, parameter_table, parse_layout


def format_table(rows: list[dict], fields: str = "layout", readout: str = "invariant") -> str:
    lines = [
        f"fields = {fields}, readout = {readout}",
        f"{'arch':<5} {'fields':>12} {'params':>9} {'paper':>9} {'ratio':>6}",
    ]
    for r in rows:
        paper = f"{r['paper']:,}" if r["paper"] else "-"
        ratio = f"{r['params'] / r['paper']:.2f}" if r["paper"] else "-"
        lines.append(f"{r['arch']:<5} {'-'.join(map(str, r['fields'])):>12} {r['params']:>9,} {paper:>9} {ratio:>6}")
    return "\n".join(lines)


def format_tables(layout, fields: str, readout: str = "invariant") -> str:
    """One table per field rule (``fields="all"``: every rule)."""
    rules = FIELD_RULES if fields == "all" else (fields,)
    return "\n\n".join(
        format_table(parameter_table(layout, fields=rule, readout=readout), rule, readout) for rule in rules
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", default=",".join(map(str, DEFAULT_LAYOUT)), help="widths (default %(default)s)")
    parser.add_argument(
        "--fields", choices=FIELD_RULES + ("all",), default="all", help="field rule (default %(default)s)"
    )
    parser.add_argument("--readout", choices=READOUTS, default="invariant", help="readout (default %(default)s)")
    args = parser.parse_args()
    print(format_tables(parse_layout(args.layout), args.fields, args.readout))
