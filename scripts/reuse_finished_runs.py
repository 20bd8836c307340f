"""Copy finished runs that a sweep would train from other results folders into its runs folder,
so that the same run (same identity: the run name ends in the config's identity hash, and
`sweep` checks a finished folder's config before it skips it) is not trained twice.

Usage: python scripts/reuse_finished_runs.py OUT PRESET AXES_JSON RUN_FOLDER...
  AXES_JSON: the sweep's axes beside the preset, e.g. '{"datasets": ["bloodmnist"]}'.
Only folders with summary.json are copied, and none that OUT already has.
"""

import json
import shutil
import sys
from pathlib import Path

from dpecnn.train.plan import sweep_configs
from dpecnn.train.sweep import run_name

out, preset, axes, runs = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), map(Path, sys.argv[4:])
wanted = {run_name(c) for c in sweep_configs(preset, {}, axes)}
for run in runs:
    if run.name in wanted and (run / "summary.json").is_file() and not (out / run.name).exists():
        shutil.copytree(run, out / run.name)
        print(f"reused {run} (finished, same identity)")
