"""What the measurements become: runs loaded for analysis, the notebooks' reports (figure, tables,
verdict), Table 1, the privacy–utility curve, and the generated blocks of README and the docs."""
