"""``python -m dpecnn suite``: run the notebook suite with papermill, in dependency order.

1. ``01_train`` once per run: every arch × layout × seed of the :class:`SuiteConfig`
   (each writes a run folder under ``<out>/runs``),
2. ``02``–``05`` pointed at the runs of the analysis layout, all seeds, grouped by setting
   (attributions, impulse responses, sparsity, calibration),
3. ``00_explore`` (the equivariance explorer) on the first seed of each arch: a snapshot to
   open in JupyterLab and explore,
4. ``06`` over the whole runs folder (accuracy against ε over the privacy levels, Table 1,
   accuracy vs size over the layouts),
5. ``07`` the symmetry probe of the dataset (does it have a canonical orientation?),
6. ``08`` the one-run privacy audit of the first arch, with and without DP, at the budget of
   ``audit`` (runs with canaries, under ``<out>/audit``; never releases).

Executed notebooks go to ``<out>/notebooks``, figures to ``<out>/figures``, every table a
notebook shows to ``<out>/tables`` (CSV). A notebook is executed under a temporary name and
renamed when it has finished; one that fails is kept as ``<name>.FAILED.ipynb`` and stops
the suite with its name and the failing cell's error.

A configuration is the default (``make run``), a JSON file, or the name of one shipped in
``dpecnn/suite_configs`` (``paper``: what the paper's figures need; ``privacy_utility``: the
privacy–utility curve; see their descriptions).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dpecnn import io
from dpecnn.data.datasets import is_medmnist
from dpecnn.errors import DpecnnError
from dpecnn.models import parse_layout
from dpecnn.train.config import RECIPES, TrainConfig, with_recipe
from dpecnn.train.sweep import run_name

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SHIPPED_CONFIGS = Path(__file__).with_name("suite_configs")
ANALYSES = ("02_interpretability", "03_impulse_response", "04_sparsity", "05_calibration")
# TrainConfig fields that 01_train takes as named parameters; the rest travel in `other_settings`.
_TRAIN_PARAMS = (
    "dataset",
    "arch",
    "dp",
    "epsilon",
    "delta",
    "max_grad_norm",
    "epochs",
    "batch_size",
    "physical_batch_size",
    "optimizer",
    "lr",
    "aug_mult",
    "seed",
    "train_subset",
    "eval_subset",
    "data_root",
)
# 07_symmetry_probe's parameters that a suite config may set (the probe takes dataset and data root from it);
# the defaults of ProbeConfig and of `dpecnn probe` (a test keeps the three equal)
PROBE_DEFAULTS = {"train_subset": 4000, "eval_subset": 2000, "steps": 400, "seeds": [0, 1, 2]}
# 08_privacy_audit's parameters that a suite config may set: a small budget by default (about a
# minute on 2 cores for both runs; 3 epochs: each included canary is drawn about 3 times, as in
# results/audit); the notebook takes dataset, data root and arch from the suite
AUDIT_DEFAULTS = {
    "epsilons": [7.42, None],
    "canaries": 1000,
    "canary_kind": "gradient",
    "train": {"epochs": 3, "train_subset": 2000, "eval_subset": 500},
}
# Settings the suite config sets itself (one value or a list), so `train` must not.
_SET_BY_SUITE = {"dataset": "dataset", "arch": "archs", "dp": "dp", "layout": "layouts", "seed": "seeds"}


@dataclass
class SuiteConfig:
    """What the suite trains and analyses: every arch × layout × seed, trained with ``train``
    (any other TrainConfig fields, on top of the settings of ``recipe``); notebooks 02–05 compare
    the runs at ``analysis_layout`` (default: the first layout); ``probe`` is the symmetry
    probe's budget. The default is ``make run``: real BloodMNIST, a conventional and a C4 model
    under DP (ε = 7.42), one seed, 6 epochs (~10 min on 2 cores, the probe included).
    ``description`` says what a configuration is for and its budget."""

    description: str = "make run: e and C4 on BloodMNIST under DP (epsilon 7.42), layout 8-16-32, seed 0, 6 epochs"
    dataset: str = "bloodmnist"
    archs: list[str] = field(default_factory=lambda: ["e", "C4"])
    layouts: list[list[int]] = field(default_factory=lambda: [[8, 16, 32]])
    analysis_layout: list[int] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    dp: bool = True
    # privacy levels trained for every arch × layout × seed instead of `dp` alone: each a target ε
    # (DP at that budget) or None (no DP); notebooks 02–05 and 00 analyse the runs at the first one
    epsilons: list[float | None] | None = None
    recipe: str | None = None  # a TrainConfig recipe (dpecnn.train.config.RECIPES) under `train`
    train: dict = field(default_factory=lambda: {"epochs": 6})
    n_images: int = 6
    probe: dict = field(default_factory=lambda: dict(PROBE_DEFAULTS))  # 07_symmetry_probe's budget
    audit: dict = field(default_factory=lambda: dict(AUDIT_DEFAULTS))  # 08_privacy_audit's budget
    notebooks: str = str(NOTEBOOKS)

    @classmethod
    def load(cls, source: str | Path | None) -> SuiteConfig:
        """The default (``None``), a JSON file with these fields, or the name of a shipped one
        (:func:`shipped_configs`); anything wrong is one :class:`DpecnnError` line."""
        if source is None:
            return cls().validate()
        path = Path(source)
        if not path.is_file():
            path = SHIPPED_CONFIGS / f"{source}.json"
            if not path.is_file():
                raise DpecnnError(
                    f"no suite config '{source}': not a file, nor a shipped config ({', '.join(shipped_configs())})"
                )
        data = io.read_json(path)
        try:
            if not isinstance(data, dict):
                raise DpecnnError(f"a JSON object is needed, got {type(data).__name__}")
            unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise DpecnnError(f"unknown keys {', '.join(unknown)}")
            return cls(**data).validate()
        except DpecnnError as exc:
            raise DpecnnError(f"bad suite config {path}: {exc}") from None

    def validate(self) -> SuiteConfig:
        """Check every field and every run's TrainConfig; raise one :class:`DpecnnError` line."""
        for name in ("archs", "layouts", "seeds"):
            values = getattr(self, name)
            if not isinstance(values, list) or not values or len(set(map(str, values))) != len(values):
                raise DpecnnError(f"{name} must be a non-empty list without repeats, got {values!r}")
        if self.recipe is not None and self.recipe not in RECIPES:
            raise DpecnnError(f"unknown recipe {self.recipe!r}; choose one of: {', '.join(RECIPES)}")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise DpecnnError(f"seeds must be integers ≥ 0, got {self.seeds!r}")
        if not isinstance(self.n_images, int) or self.n_images < 1:
            raise DpecnnError(f"n_images must be an integer ≥ 1, got {self.n_images!r}")
        if not isinstance(self.probe, dict) or set(self.probe) - set(PROBE_DEFAULTS):
            raise DpecnnError(
                f"probe must be an object with keys among {', '.join(PROBE_DEFAULTS)}, got {self.probe!r}"
            )
        if not isinstance(self.audit, dict) or set(self.audit) - set(AUDIT_DEFAULTS):
            raise DpecnnError(
                f"audit must be an object with keys among {', '.join(AUDIT_DEFAULTS)}, got {self.audit!r}"
            )
        if not isinstance(self.train, dict):
            raise DpecnnError(f"train must be an object of TrainConfig fields, got {self.train!r}")
        clashes = sorted(set(self.train) & set(_SET_BY_SUITE))
        if clashes:
            raise DpecnnError(
                f"train sets {', '.join(clashes)}: give "
                f"{', '.join(_SET_BY_SUITE[k] for k in clashes)} in the suite config instead"
            )
        try:
            self.layouts = [list(parse_layout(w)) for w in self.layouts]
            self.analysis_layout = list(parse_layout(self.analysis_layout or self.layouts[0]))
        except ValueError as exc:
            raise DpecnnError(str(exc)) from None
        if self.analysis_layout not in self.layouts:
            raise DpecnnError(f"analysis_layout {self.analysis_layout} is not one of the layouts {self.layouts}")
        if not Path(self.notebooks).is_dir():
            raise DpecnnError(f"notebooks folder {self.notebooks} does not exist")
        if self.epsilons is not None:
            if (
                not isinstance(self.epsilons, list)
                or not self.epsilons
                or len(set(map(str, self.epsilons))) != len(self.epsilons)
                or not all(
                    e is None or (isinstance(e, (int, float)) and not isinstance(e, bool)) for e in self.epsilons
                )
            ):
                raise DpecnnError(
                    f"epsilons must be a non-empty list of numbers or null without repeats, got {self.epsilons!r}"
                )
            if "epsilon" in self.train or "dp" in self.train:
                raise DpecnnError("give the privacy levels in epsilons, not epsilon or dp in train")
        if not is_medmnist(self.dataset):  # own images: the notebooks run in another folder
            self.dataset = str(Path(self.dataset).expanduser().resolve())
        self.train_configs()
        return self

    @property
    def privacy_levels(self) -> list[float | None]:
        """``epsilons``, or the one level of ``dp`` (the train settings' ε; None: no DP)."""
        if self.epsilons is not None:
            return [float(e) if e is not None else None for e in self.epsilons]
        return [self.train.get("epsilon", TrainConfig.epsilon)] if self.dp else [None]

    def train_config(self, arch: str, layout, seed: int, epsilon: float | None = None) -> TrainConfig:
        """The run of ``arch`` at ``layout`` and ``seed``, at privacy level ``epsilon`` (default the first)."""
        epsilon = self.privacy_levels[0] if epsilon is None and self.epsilons is None else epsilon
        dp = epsilon is not None
        privacy = {"dp": dp, **({"epsilon": epsilon} if dp and self.epsilons is not None else {})}
        try:
            cfg = TrainConfig.from_dict(
                with_recipe(
                    self.recipe,
                    {
                        **self.train,
                        "dataset": self.dataset,
                        "arch": arch,
                        "layout": layout,
                        "seed": seed,
                        **privacy,
                    },
                )
            )
        except DpecnnError as exc:
            raise DpecnnError(f"train: {exc}") from None
        return cfg.validate()

    def train_configs(self) -> list[TrainConfig]:
        """Every run, validated: layouts × archs × privacy levels × seeds (in that nesting)."""
        return [
            self.train_config(a, w, s, e)
            for w in self.layouts
            for a in self.archs
            for e in self.privacy_levels
            for s in self.seeds
        ]

    def analysed(self, cfg: TrainConfig) -> bool:
        """Whether notebooks 02–05 and 00 analyse this run: at the analysis layout and the first privacy level."""
        first = self.privacy_levels[0]
        return list(cfg.layout) == self.analysis_layout and (cfg.dp, cfg.epsilon if cfg.dp else None) == (
            first is not None,
            first,
        )

    def _images(self) -> dict:
        """The size and channels the training settings ask for (own data or MedMNIST+ sizes)."""
        return {k: self.train[k] for k in ("size", "channels") if k in self.train}

    def probe_parameters(self) -> dict:
        """07_symmetry_probe's parameters: the probe's settings on the suite's dataset and images."""
        return {
            **PROBE_DEFAULTS,
            **self.probe,
            "dataset": self.dataset,
            "data_root": self.train.get("data_root"),
            **self._images(),
        }

    def audit_parameters(self, out_dir: Path) -> dict:
        """08_privacy_audit's parameters: the audit of the first arch, its runs under ``out_dir``."""
        return {
            **AUDIT_DEFAULTS,
            **self.audit,
            "dataset": self.dataset,
            "data_root": self.train.get("data_root"),
            "train": {**self.audit.get("train", AUDIT_DEFAULTS["train"]), **self._images()},
            "arch": self.archs[0],
            "out_dir": str(out_dir),
        }


def shipped_configs() -> list[str]:
    """Names of the suite configs shipped in ``dpecnn/suite_configs``."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.json"))


def quiet_shutdown_kernel_manager():
    """jupyter_client's AsyncKernelManager, except that shutting a kernel down sends no SIGINT
    first. The suite shuts a kernel down only after its notebook has finished, so there is
    nothing to interrupt, and ipykernel logs a SIGINT that lands inside a message handler as
    ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` on the terminal."""
    from jupyter_client import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def execute(notebook: str, out_dir: Path, name: str, parameters: dict, source: Path, progress=print) -> Path:
    """Execute ``source/<notebook>.ipynb`` into ``out_dir/<name>.ipynb`` with papermill. Each
    training epoch the notebook reports (:func:`~dpecnn.train.trainer.epoch_line`) goes to
    ``progress`` as it happens, prefixed with ``name``; the rest of its output stays in it."""
    import papermill as pm
    from traitlets.config import Config

    from dpecnn.train.trainer import ProgressRelay

    final, running = out_dir / f"{name}.ipynb", out_dir / f".{name}.running.ipynb"
    io.make_folder(out_dir)
    # Kernel sockets encrypted with CurveZMQ keys the manager provisions (ipykernel supports
    # it): otherwise the kernel warns on the terminal that it runs over TCP in plain text.
    kernel = Config({"KernelManager": {"transport_encryption": "auto"}})
    relay = ProgressRelay(lambda line: progress(f"{'':10s}{name}: {line}"))  # indented under run_suite's log
    try:
        pm.execute_notebook(
            str(source / f"{notebook}.ipynb"),
            str(running),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(out_dir),
            stdout_file=relay,
            config=kernel,
            kernel_manager_class=quiet_shutdown_kernel_manager(),
        )
    except pm.PapermillExecutionError as exc:
        os.replace(running, out_dir / f"{name}.FAILED.ipynb")
        raise DpecnnError(
            f"notebook {notebook} failed in cell [{exc.exec_count}]: {exc.ename}: "
            f"{exc.evalue.splitlines()[0] if exc.evalue else ''}"
        ) from None
    os.replace(running, final)
    return final


def run_suite(cfg: SuiteConfig, out: str | Path, log=print) -> dict[str, Path]:
    """Train and analyse what ``cfg`` describes into ``out`` (see module docstring); ``log``
    gets one line per notebook and each training epoch's progress."""
    out = Path(out).resolve()
    configs = cfg.validate().train_configs()  # bad input fails before anything runs
    source = Path(cfg.notebooks)
    nb_dir, fig_dir, table_dir, runs_dir = out / "notebooks", out / "figures", out / "tables", out / "runs"
    folders = {"fig_dir": str(fig_dir), "table_dir": str(table_dir)}
    other_settings = {k: v for k, v in cfg.train.items() if k not in _TRAIN_PARAMS}
    analysed: dict[str, list[str]] = {}  # arch → its runs at the analysis layout, one per seed
    start = time.perf_counter()
    log(cfg.description)
    for i, tc in enumerate(configs, 1):
        run_dir, layout = str(runs_dir / run_name(tc)), "-".join(map(str, tc.layout))
        if cfg.analysed(tc):
            analysed.setdefault(tc.arch, []).append(run_dir)
        params = {k: v for k, v in dataclasses.asdict(tc).items() if k in _TRAIN_PARAMS}
        params.update(layout=list(tc.layout), out_dir=run_dir, other_settings=other_settings, **folders)
        privacy = (f"eps{tc.epsilon:g}" if tc.dp else "nodp") if cfg.epsilons is not None else ""
        name = f"01_train_{tc.arch}_w{layout}_s{tc.seed}" + (f"_{privacy}" if privacy else "")
        log(
            f"[{time.perf_counter() - start:6.0f}s] 01_train {tc.arch} {layout} seed {tc.seed} {privacy} "
            f"({i}/{len(configs)})".replace("  ", " ")
        )
        execute("01_train", nb_dir, name, params, source, progress=log)
    first = cfg.privacy_levels[0]
    quick = {
        "dataset": cfg.dataset,
        "dp": first is not None,
        "layout": cfg.analysis_layout,
        **cfg.train,
        **({"epsilon": first} if first is not None and cfg.epsilons is not None else {}),
    }
    for nb in ANALYSES:
        log(f"[{time.perf_counter() - start:6.0f}s] {nb}")
        params = {"runs": analysed, "quick_train": quick, **folders}
        if nb in ("02_interpretability", "03_impulse_response"):
            params["n_images"] = cfg.n_images
        execute(nb, nb_dir, nb, params, source, progress=log)
    log(f"[{time.perf_counter() - start:6.0f}s] 00_explore")  # a snapshot; open it in JupyterLab to explore
    execute(
        "00_explore",
        nb_dir,
        "00_explore",
        {"runs": {a: r[0] for a, r in analysed.items()}, "quick_train": quick, "n_images": cfg.n_images},
        source,
        progress=log,
    )
    log(f"[{time.perf_counter() - start:6.0f}s] 06_privacy_utility")
    execute(
        "06_privacy_utility", nb_dir, "06_privacy_utility", {"runs_dir": str(runs_dir), **folders}, source, progress=log
    )
    log(f"[{time.perf_counter() - start:6.0f}s] 07_symmetry_probe")
    execute(
        "07_symmetry_probe", nb_dir, "07_symmetry_probe", {**cfg.probe_parameters(), **folders}, source, progress=log
    )
    log(f"[{time.perf_counter() - start:6.0f}s] 08_privacy_audit")
    execute(
        "08_privacy_audit",
        nb_dir,
        "08_privacy_audit",
        {**cfg.audit_parameters(out / "audit"), **folders},
        source,
        progress=log,
    )
    log(f"[{time.perf_counter() - start:6.0f}s] done")
    return {"notebooks": nb_dir, "figures": fig_dir, "tables": table_dir, "runs": runs_dir}
