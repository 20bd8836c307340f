"""What a user sees while the suite runs (issue 10 §5): help texts that state defaults, outputs
readable by others, per-epoch progress on the terminal, and executed notebooks without
warnings."""

import argparse
import json
import os
import re
import stat
from pathlib import Path

import pytest

from dpecnn import io
from dpecnn.cli import build_parser
from dpecnn.export import export_run
from dpecnn.suite import NOTEBOOKS, execute
from dpecnn.train.trainer import ProgressRelay, epoch_line

STATES_DEFAULT = re.compile(r"\((default\b[^()]*|required)\)$")
TINY_TRAIN = {
    "dataset": "dermamnist",
    "arch": "C4",
    "epochs": 2,
    "layout": [4, 4, 8],
    "batch_size": 32,
    "physical_batch_size": 32,
    "train_subset": 96,
    "eval_subset": 32,
}


def options(parser: argparse.ArgumentParser):
    """(subcommand, action) for every option and positional of every subcommand, but -h."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, subparser in sub.choices.items():
        for action in subparser._actions:
            if not isinstance(action, argparse._HelpAction):
                yield name, action


def without_default(parser: argparse.ArgumentParser) -> list[str]:
    """Options whose help (as --help prints it) does not end with ``(default …)`` or ``(required)``."""
    return [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, action in options(parser)
        if not STATES_DEFAULT.search((action.help or "") % vars(action))
    ]


def test_every_option_of_every_subcommand_states_its_default():
    parser = build_parser()
    assert len(list(options(parser))) > 70
    assert without_default(parser) == []
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    train.add_argument("--colour", help="a colour")
    train.add_argument("--shade")
    assert without_default(parser) == ["train --colour", "train --shade"]  # the check bites


def test_progress_relay_passes_on_complete_epoch_lines_only():
    lines = []
    relay = ProgressRelay(lines.append)
    first, second = epoch_line(1, 2, 0.5, 3.0, 7.42, 12.4), epoch_line(2, 2, 0.625, None, 7.42, 3)
    relay.write(f"loading\n{first}\nsome other output\n{second[:9]}")
    relay.write(f"{second[9:]}\n")
    assert (
        lines == [first, second] == ["epoch 1/2, val acc 0.500, ε 3.00 of 7.42, 12 s", "epoch 2/2, val acc 0.625, 3 s"]
    )


@pytest.fixture
def umask():
    """Sets the umask for one test and restores it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """Octal mode of ``root`` and of everything below it."""
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [root, *root.rglob("*")]}


def readable(root: Path) -> dict[str, str]:
    """What ``modes`` should be under umask 0o022: folders 0o755, files 0o644."""
    return {name: oct(0o755 if (root / name).is_dir() else 0o644) for name in modes(root)}


def test_atomic_writes_and_staging_folders_follow_the_umask(umask, tmp_path):
    umask(0o027)
    io.write_json(tmp_path / "a.json", {})
    staging = io.make_staging_dir(tmp_path / "release")
    assert modes(tmp_path)["a.json"] == oct(0o640) and modes(staging)["."] == oct(0o750)
    assert staging.parent == tmp_path and staging.name.startswith(".release.")


def test_saved_figures_are_readable_by_others(umask, tmp_path):
    import matplotlib.pyplot as plt

    from dpecnn.plotting import save_figure

    fig = plt.figure()
    save_figure(fig, tmp_path / "figures", "empty")
    plt.close(fig)
    assert modes(tmp_path / "figures") == readable(tmp_path / "figures")


def test_executed_training_notebook_streams_progress_stays_clean_and_is_readable(
    umask, synthetic_root, tmp_path, monkeypatch, capfd
):
    data = synthetic_root / "dermamnist.npz"
    # The kernel inherits this filter: synthetic files rightly differ from medmnist's md5.
    monkeypatch.setenv("PYTHONWARNINGS", f"ignore:{data}")
    progress = []
    params = {
        **TINY_TRAIN,
        "data_root": str(synthetic_root),
        "out_dir": str(tmp_path / "run"),
        "fig_dir": str(tmp_path / "figures"),
    }
    notebook = execute("01_train", tmp_path / "notebooks", "01_train_C4", params, NOTEBOOKS, progress.append)

    assert len(progress) == 2 and all(
        re.fullmatch(rf" +01_train_C4: epoch {i}/2, val acc [01]\.\d{{3}}, ε \d\.\d\d of 7\.42, \d+ s", line)
        for i, line in enumerate(progress, 1)
    ), progress
    terminal = capfd.readouterr()
    assert "without encryption" not in terminal.err + terminal.out
    outputs = [o for cell in json.loads(notebook.read_text())["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr" or o["output_type"] == "error"]
    texts = [json.dumps(o.get("text", o.get("data", {}).get("text/plain", ""))) for o in outputs]
    assert not [t for t in texts if re.search(r"warn|IProgress", t, re.I)], texts
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]

    export_run(tmp_path / "run", tmp_path / "release")
    for folder in ("run", "notebooks", "release"):
        assert modes(tmp_path / folder) == readable(tmp_path / folder), folder


def test_top_level_help_speaks_to_users_and_names_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert not any(note in text for note in ("SUPPRESS", "``", ":class:", "TrainConfig")), "implementation notes"
    commands = build_parser()._subparsers._group_actions[0].choices
    overview = text.split("positional arguments:")[0]
    assert all(name in overview for name in commands), "the overview groups every command"
    assert "examples:" in text and "python -m dpecnn train" in text
