"""``python -m dpecnn suite``: run the notebook suite with papermill, in dependency order.

1. ``01_train`` once per architecture (each writes a run folder under ``<out>/runs``),
2. ``02``–``05`` pointed at those runs (attributions, impulse responses, sparsity,
   calibration), 3. ``06`` over the whole runs folder (Table 1, accuracy vs size).

Executed notebooks go to ``<out>/notebooks``, figures to ``<out>/figures``, tables to
``<out>/tables``. A notebook is executed under a temporary name and renamed when it has
finished; one that fails is kept as ``<name>.FAILED.ipynb`` and stops the suite with its
name and the failing cell's error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dpecnn.errors import DpecnnError
from dpecnn.train.config import TrainConfig
from dpecnn.train.sweep import run_name

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ANALYSES = ("02_interpretability", "03_impulse_response", "04_sparsity", "05_calibration")
# TrainConfig fields that 01_train takes as named parameters; the rest travel in `other_settings`.
_TRAIN_PARAMS = ("dataset", "arch", "dp", "epsilon", "delta", "max_grad_norm", "epochs", "batch_size",
                 "physical_batch_size", "optimizer", "lr", "aug_mult", "seed", "train_subset", "eval_subset",
                 "data_root")


@dataclass
class SuiteConfig:
    """What the suite trains and analyses. The default is ``make run``: real BloodMNIST,
    a conventional and a C4 model under DP (ε = 7.42) for 6 epochs (~12 min on 2 cores)."""

    dataset: str = "bloodmnist"
    archs: list[str] = field(default_factory=lambda: ["e", "C4"])
    dp: bool = True
    train: dict = field(default_factory=lambda: {"epochs": 6})  # any other TrainConfig fields
    n_images: int = 6
    notebooks: str = str(NOTEBOOKS)

    @classmethod
    def load(cls, path: str | Path | None) -> "SuiteConfig":
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise DpecnnError(f"bad suite config {path}: {exc}") from None

    def train_config(self, arch: str) -> TrainConfig:
        try:
            return TrainConfig(dataset=self.dataset, arch=arch, dp=self.dp, **self.train).validate()
        except TypeError as exc:
            raise DpecnnError(f"bad train settings in suite config: {exc}") from None


def execute(notebook: str, out_dir: Path, name: str, parameters: dict, source: Path) -> Path:
    """Execute ``source/<notebook>.ipynb`` into ``out_dir/<name>.ipynb`` with papermill."""
    import papermill as pm

    final, running = out_dir / f"{name}.ipynb", out_dir / f".{name}.running.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(source / f"{notebook}.ipynb"), str(running), parameters=parameters,
                            kernel_name="python3", progress_bar=False, cwd=str(out_dir))
    except pm.PapermillExecutionError as exc:
        os.replace(running, out_dir / f"{name}.FAILED.ipynb")
        raise DpecnnError(f"notebook {notebook} failed in cell [{exc.exec_count}]: {exc.ename}: "
                          f"{exc.evalue.splitlines()[0] if exc.evalue else ''}") from None
    os.replace(running, final)
    return final


def run_suite(cfg: SuiteConfig, out: str | Path, log=print) -> dict[str, Path]:
    out = Path(out).resolve()
    source = Path(cfg.notebooks)
    configs = {arch: cfg.train_config(arch) for arch in cfg.archs}  # bad input fails before anything runs
    nb_dir, fig_dir, runs_dir = out / "notebooks", out / "figures", out / "runs"
    runs = {}
    start = time.perf_counter()
    for arch, tc in configs.items():
        runs[arch] = str(runs_dir / run_name(tc))
        params = {k: v for k, v in dataclasses.asdict(tc).items() if k in _TRAIN_PARAMS}
        params.update(layout=list(tc.layout), out_dir=runs[arch], fig_dir=str(fig_dir),
                      other_settings={k: v for k, v in cfg.train.items() if k not in _TRAIN_PARAMS + ("layout",)})
        log(f"[{time.perf_counter() - start:6.0f}s] 01_train {arch}")
        execute("01_train", nb_dir, f"01_train_{arch}", params, source)
    quick = {"dataset": cfg.dataset, "dp": cfg.dp, **cfg.train}
    for nb in ANALYSES:
        log(f"[{time.perf_counter() - start:6.0f}s] {nb}")
        params = {"runs": runs, "quick_train": quick, "fig_dir": str(fig_dir)}
        if nb in ("02_interpretability", "03_impulse_response"):
            params["n_images"] = cfg.n_images
        execute(nb, nb_dir, nb, params, source)
    log(f"[{time.perf_counter() - start:6.0f}s] 06_privacy_utility")
    execute("06_privacy_utility", nb_dir, "06_privacy_utility",
            {"runs_dir": str(runs_dir), "table_dir": str(out / "tables"), "fig_dir": str(fig_dir)}, source)
    log(f"[{time.perf_counter() - start:6.0f}s] done")
    return {"notebooks": nb_dir, "figures": fig_dir, "tables": out / "tables", "runs": runs_dir}

