"""Run folders under concurrent and interrupted runs: the lock, stale moves, checked scores, logs.
"""

import functools
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from experiments import common
from experiments.common import Experiment, main
from mer_keras import training
from mer_keras.training import TrainConfig, run_lock, scoring
from mer_keras.training import run as run_module
from data_prep.progress import Progress
from mer_keras.training.run_folder import MOVE_JOURNAL, fold_path
from test_training import write_tiny_cache

REPO = Path(__file__).resolve().parents[1]
FOLDS = ["casme2/sub01.csv", "casme2/sub02.csv", "samm/006.csv"]

#: holds a run folder's lock with the real module, from a bare interpreter (no TensorFlow): a run
#: elsewhere that is writing into the folder
HOLDER = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("run_lock", sys.argv[1])
    run_lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_lock)
    with run_lock.run_folder_lock(sys.argv[2]):
        print("held", flush=True)
        time.sleep(float(sys.argv[3]))
""")


def _tiny_experiment(smoke=False):
    return Experiment(name="tiny", protocol="cde", engine="compile_once",
                      report={"paper": "fr", "table": "2", "method": "FR"},
                      train=TrainConfig(experiment="tiny", model="linear", epochs=1, batch_size=4,
                                        learning_rate=0.05, optimizer="sgd", seed=7))


@pytest.fixture
def tiny_cache(tmp_path):
    return write_tiny_cache(tmp_path / "cache")


@pytest.fixture
def cli(tiny_cache, tmp_path, monkeypatch):
    """``cli(*args)``: the experiment command on the tiny cache into ``tmp_path/runs/tiny``; the
    folds train in this process (the command's worker would import TensorFlow again)."""
    monkeypatch.setattr(common, "run_protocol",
                        functools.partial(training.run_protocol, folds_per_process=0))
    return lambda *args: main(_tiny_experiment, "test", ["--data", str(tiny_cache), "--out",
                                                          str(tmp_path / "runs"), *args])


def _hold(run_dir, seconds=60.0):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, run_lock.__file__, str(run_dir),
                               str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*")
                  if p.is_file())


def _run_json(folder):
    return json.loads((Path(folder) / "run.json").read_text())


# -- two runs, one run folder ----------------------------------------------------------------------

def test_a_second_run_into_a_busy_run_folder_stops_at_once_naming_the_holder(
        cli, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    assert cli() == 0
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    holder = _hold(run_dir)
    try:
        capsys.readouterr()
        # another config: without the lock it would move the holder's folds aside
        assert cli("--epochs", "2") == 2
        err = capsys.readouterr().err
        assert f"error: {run_dir}: another run is writing into this run folder (pid " \
               f"{holder.pid} on " in err
        assert "--wait" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert {p: p.stat().st_mtime_ns for p in before} == before
        assert not (run_dir / "stale").exists()
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, its flock goes with the process
        holder.wait()
    assert (run_dir / ".lock").is_file()
    assert cli("--epochs", "2") == 0
    assert "written to" in capsys.readouterr().out
    assert _run_json(run_dir)["config"]["epochs"] == 2 and not (run_dir / ".lock").exists()


def test_wait_queues_a_run_behind_the_holder(cli, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    holder = _hold(run_dir, seconds=1.0)
    assert cli("--wait") == 0
    assert holder.wait(timeout=30) == 0
    assert f"{run_dir}: another run is writing into this run folder (pid {holder.pid} on " \
           in capsys.readouterr().err  # said, then waited
    assert sorted(p.relative_to(run_dir / "folds").as_posix()
                  for p in (run_dir / "folds").rglob("*.csv")) == FOLDS


@pytest.mark.parametrize("change", ["another_config", "deleted"])
def test_scores_are_read_only_from_fold_files_of_the_run(cli, tmp_path, capsys, monkeypatch,
                                                         change):
    # as a writer that ignores the lock would do between the last fold and the scoring
    real_score = scoring.score_run
    victim = fold_path(tmp_path / "runs" / "tiny", 0, "casme2/sub02")

    def meddled(*args, **kwargs):
        if change == "deleted":
            victim.unlink()
        else:
            text = victim.read_text()
            victim.write_text(text.replace(_tiny_experiment().train.config_hash(), "f" * 64))
        return real_score(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_run", meddled)
    assert cli() == 2
    captured = capsys.readouterr()
    assert "written to" not in captured.out and "Traceback" not in captured.err
    reason = "is missing" if change == "deleted" else "was made with config ffffffffffff on cache"
    assert f"error: {victim}: fold casme2/sub02 of round 0 {reason}" in captured.err
    assert "nothing was scored" in captured.err
    assert not (tmp_path / "runs" / "tiny" / "metrics.csv").exists()


def _command(tmp_path, tiny_cache):
    """``start(*args)``: the experiment command in a process of its own, as a user runs it."""
    script = tmp_path / "tiny_experiment.py"
    script.write_text(textwrap.dedent("""
        import sys
        from experiments.common import main
        from test_run_folder_safety import _tiny_experiment

        if __name__ == "__main__":
            sys.exit(main(_tiny_experiment, "tiny"))
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}

    def start(*args):
        return subprocess.Popen([sys.executable, str(script), "--data", str(tiny_cache), "--out",
                                 str(tmp_path / "runs"), *args], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return start


@pytest.mark.slow
def test_two_real_concurrent_runs_one_refused_one_queued(tiny_cache, tmp_path):
    start = _command(tmp_path, tiny_cache)
    run_dir = tmp_path / "runs" / "tiny"
    first = start()
    deadline = time.monotonic() + 120
    while run_lock.read_holder(run_dir).get("pid") != first.pid:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock, mid-run
    try:
        refused = start("--epochs", "2")
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2 and f"(pid {first.pid} on " in err
        queued = start("--epochs", "2", "--wait")
        while "waiting for it to end" not in queued.stderr.readline():
            assert queued.poll() is None
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and "written to" in out, err[-2000:]
    out, err = queued.communicate(timeout=300)
    assert queued.returncode == 0 and "written to" in out, err[-2000:]
    # the queued run (another config) found the first one finished and moved all of it aside
    (stale,) = (run_dir / "stale").iterdir()
    assert _run_json(stale)["config"]["epochs"] == 1 and (stale / "summary.csv").is_file()
    assert _run_json(run_dir)["config"]["epochs"] == 2


# -- a config change, then a kill ------------------------------------------------------------------

def test_a_config_change_killed_anywhere_moves_every_stale_file_together(
        cli, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "runs" / "tiny"
    assert cli() == 0
    (run_dir / "pretrained").mkdir()  # a transfer chain's cached macro pre-training stays
    (run_dir / "pretrained" / "macronet_0123_encoder.weights.h5").write_bytes(b"weights")
    (run_dir / "notes.txt").write_text("a file of any name")
    old = [p for p in _listing(run_dir) if not p.startswith("pretrained")]
    assert {"summary.csv", "metrics.csv", "run.json", "confusion_matrix.png"} <= set(old)

    # killed during the move, after each rename in turn: every rerun goes on with the same move
    real_rename, renames = Path.rename, []

    def killed_after_one(path, target):
        if len(renames) == kills:
            raise KeyboardInterrupt("killed")
        renames.append(path.name)
        return real_rename(path, target)

    monkeypatch.setattr(Path, "rename", killed_after_one)
    kills = 0
    while True:
        kills += 1
        try:
            cli("--epochs", "2")
        except KeyboardInterrupt:
            assert (run_dir / MOVE_JOURNAL).is_file()
            continue
        break
    # one more rename each time; what records no config hash went first, the fold files last
    assert renames == ["confusion_matrix.png", "metrics.csv", "metrics_per_fold.csv",
                       "metrics_per_round.csv", "notes.txt", "predictions.csv", "summary.csv",
                       "run.json", "folds"] and kills == len(renames)
    assert "a run was killed while moving" in capsys.readouterr().err
    monkeypatch.setattr(Path, "rename", real_rename)

    (stale,) = (run_dir / "stale").iterdir()
    assert _listing(stale) == old and _run_json(stale)["config"]["epochs"] == 1
    assert _run_json(run_dir)["config"]["epochs"] == 2
    assert not (run_dir / MOVE_JOURNAL).exists() and not (run_dir / "notes.txt").exists()
    new = _listing(run_dir)
    assert (run_dir / "pretrained" / "macronet_0123_encoder.weights.h5").is_file()

    # the next change, killed after the move, mid-training: nothing of the old run beside the new
    real_write, written = run_module.write_fold, []

    def killed_after_a_fold(path, *args, **kwargs):
        if written:
            raise KeyboardInterrupt("killed")
        written.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(run_module, "write_fold", killed_after_a_fold)
    with pytest.raises(KeyboardInterrupt):
        cli("--epochs", "3")
    assert [p for p in _listing(run_dir) if not p.startswith(("stale/", "pretrained/"))] == \
        ["folds/casme2/sub01.csv", "folds/casme2/sub01.json"]
    monkeypatch.setattr(run_module, "write_fold", real_write)
    assert cli("--epochs", "3") == 0
    assert sorted(_listing(stale2) for stale2 in (run_dir / "stale").iterdir()) == \
        sorted([old, [p for p in new if not p.startswith(("stale/", "pretrained/"))]])


@pytest.mark.slow
def test_a_config_change_then_sigkill_then_rerun(cli, tiny_cache, tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    assert cli() == 0
    old = _listing(run_dir)
    changed = _command(tmp_path, tiny_cache)("--epochs", "2")
    deadline = time.monotonic() + 120
    # killed once the old outputs are moved and the new run has finished a fold
    while not (list(run_dir.glob("stale/*/folds")) and list(run_dir.glob("folds/*/*.csv"))):
        assert changed.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    changed.kill()
    changed.wait()
    left = [p for p in _listing(run_dir) if not p.startswith("stale/")]
    assert "folds/casme2/sub01.csv" in left and ".lock" in left
    assert set(left) <= {".lock", *(f"folds/{fold[:-4]}.{kind}" for fold in FOLDS
                                    for kind in ("csv", "json"))}
    assert cli("--epochs", "2") == 0  # the dead run's lock blocks nobody
    (stale,) = (run_dir / "stale").iterdir()
    assert _listing(stale) == old and _run_json(run_dir)["config"]["epochs"] == 2


# -- progress in a log file ------------------------------------------------------------------------

def test_a_run_logged_to_a_file_writes_one_line_per_finished_fold(tiny_cache, tmp_path, capsys):
    config = _tiny_experiment().train
    training.run_protocol(config, tiny_cache, tmp_path / "run", folds_per_process=0)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tiny: ")]
    assert [line.split(",")[0] for line in lines] == [
        "tiny: 1/3 folds done (round 0 casme2/sub01)",
        "tiny: 2/3 folds done (round 0 casme2/sub02)", "tiny: 3/3 folds done (round 0 samm/006)"]
    assert "\r" not in err

    (tmp_path / "run" / "folds" / "samm" / "006.csv").unlink()
    training.run_protocol(config, tiny_cache, tmp_path / "run", folds_per_process=0)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tiny: ")]
    assert lines[0] == "tiny: 2/3 folds already done"
    assert lines[1].startswith("tiny: 3/3 folds done (round 0 samm/006), ")


def test_progress_draws_a_bar_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, bar in ((io.StringIO(), False), (Terminal(), True)):
        with Progress(40, desc="flow", unit="clip", stream=stream, every=10) as progress:
            for _ in range(40):
                progress.update(1)
        text = stream.getvalue()
        assert ("\r" in text) == bar
        if not bar:
            assert [line.split(",")[0] for line in text.splitlines()] == [
                f"flow: {n}/40 clips done" for n in (10, 20, 30, 40)]
