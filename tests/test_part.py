"""`ard part`: an experiment run in parts elsewhere and assembled here reports as if it ran here."""
import io
import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from ard import config as ard_config
from ard import part, report
from ard.io import write_json
from ard.paths import Layout


def _config(outdir, **changes):
    return ard_config.validate({
        "experiment": "parts", "outdir": str(outdir), "scalings": [{"type": "linear", "factor": 4}],
        "restores": ["none", "linearard"], "seeds": [0, 1], "evaluation": {"suites": ["short"]}, **changes,
    })


def _finished_remote(root, machine="one", **changes):
    """What a GPU machine holds after running the experiment: models left out, small outputs in place.
    Each machine's restorations differ (their restore.json records where they ran)."""
    config = _config(root / "results", **changes)
    layout = Layout(config["outdir"])
    for scaling, restore, seed in ard_config.runs(config):
        value = {"native": 0.6, "linear-4x": 0.4}[scaling] + (0.1 + 0.01 * seed if restore != "none" else 0)
        for suite in config["evaluation"]["suites"]:
            rows = [{"suite": suite, "task": "cloze", "metric": "acc", "context_length": None, "value": value,
                     "stderr": 0.01, "n_samples": 50, "higher_is_better": True, "beyond_max_position": False}]
            write_json(layout.eval_result(scaling, restore, suite, seed), {"rows": rows, "machine": machine})
        (layout.model(scaling, restore, seed)).mkdir(parents=True)
        (layout.model(scaling, restore, seed) / "model.safetensors").write_bytes(b"weights")
        if restore != "none":
            write_json(layout.variant(scaling, restore, seed) / "restore.json",
                       {"train_tokens": 100 + seed, "machine": machine})
            (layout.variant(scaling, restore, seed) / "train_log.csv").write_text("step,loss\n1,2.0\n")
    return config


def test_parts_packed_separately_assemble_into_the_same_summary(tmp_path, monkeypatch):
    remote = _finished_remote(tmp_path / "remote")
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    part.pack(remote, first, ["native/none", "linear-4x/none"])
    part.pack(remote, second, ["linear-4x/linearard"])
    with tarfile.open(second) as tar:
        names = tar.getnames()
    assert "out/variants/linear-4x/linearard/seed1/restore.json" in names
    assert not any(name.endswith("model.safetensors") for name in names)
    local = _config(tmp_path / "local" / "results")
    part.unpack(local, [first, second])
    report.build(local, tmp_path / "local.csv", tmp_path / "local.md")
    report.build(remote, tmp_path / "remote.csv", tmp_path / "remote.md")
    columns = [c for c in report.COLUMNS if c not in ("config_sha",)]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local.csv")[columns], pd.read_csv(tmp_path / "remote.csv")[columns])


def test_targets_name_every_suite_and_seed_of_a_variant_or_one_run(tmp_path):
    config = _config(tmp_path / "results")
    targets = part.targets(config, ["linear-4x/linearard"])
    assert targets == [str(tmp_path / "results" / p) for p in (
        "eval/linear-4x/linearard/seed0/short.json", "variants/linear-4x/linearard/seed0/restore.json",
        "variants/linear-4x/linearard/seed0/train_log.csv",
        "eval/linear-4x/linearard/seed1/short.json", "variants/linear-4x/linearard/seed1/restore.json",
        "variants/linear-4x/linearard/seed1/train_log.csv")]
    assert part.targets(config, ["linear-4x/linearard/seed1", "native/none"]) == [str(tmp_path / "results" / p) for p in (
        "eval/native/none/short.json", "eval/linear-4x/linearard/seed1/short.json",
        "variants/linear-4x/linearard/seed1/restore.json", "variants/linear-4x/linearard/seed1/train_log.csv")]
    with pytest.raises(ValueError, match="no variant or run linear-4x/cpt"):
        part.targets(config, ["linear-4x/cpt"])
    with pytest.raises(ValueError, match="no variant or run linear-4x/linearard/seed2"):
        part.targets(config, ["linear-4x/linearard/seed2"])


def test_a_differing_file_is_refused_unless_replaced(tmp_path, monkeypatch):
    remote = _finished_remote(tmp_path / "remote")
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "a.tar.gz"
    part.pack(remote, archive, ["native/none"])
    local = _config(tmp_path / "local")
    target = Layout(local["outdir"]).eval_result("native", "none", "short")
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    with pytest.raises(ValueError, match="exists here with other content"):
        part.unpack(local, [archive])
    part.unpack(local, [archive], replace=True)
    assert target.read_text() != "{}"


def test_parts_from_two_machines_keep_the_first_log_and_refuse_a_differing_result(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archives = []
    for machine in ("one", "two"):  # each rebuilt the teacher and logged it with its own timing
        remote = _finished_remote(tmp_path / machine, machine)
        log = tmp_path / "logs" / "parts" / "teacher.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"converted on {machine}\n")
        archives.append(tmp_path / f"{machine}.tar.gz")
        part.pack(remote, archives[-1], ["native/none"] if machine == "one" else ["linear-4x/linearard"])
    (tmp_path / "logs").rename(tmp_path / "remote-logs")
    local = _config(tmp_path / "local")
    written, kept, _ = part.unpack(local, archives)
    assert (tmp_path / "logs" / "parts" / "teacher.log").read_text() == "converted on one\n"
    assert kept == [Path("logs/parts/teacher.log")]
    assert Layout(local["outdir"]).eval_result("linear-4x", "linearard", "short", 1) in written
    result = Layout(local["outdir"]).eval_result("native", "none", "short")
    result.write_text("{}")
    with pytest.raises(ValueError, match="exists here with other content"):
        part.unpack(local, archives)


def test_a_run_made_under_other_config_values_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fine, stale = tmp_path / "fine.tar.gz", tmp_path / "stale.tar.gz"
    part.pack(_finished_remote(tmp_path / "a"), fine, ["native/none"])
    changed = {"restore": {"linearard": {"lr": 0.01}}}
    part.pack(_finished_remote(tmp_path / "b", **changed), stale, ["linear-4x/linearard"])
    local = _config(tmp_path / "local")
    with pytest.raises(ValueError, match=r"linear-4x/linearard/seed0 was made under other `restore` config values"):
        part.unpack(local, [fine, stale])
    assert not (tmp_path / "local").exists()  # the fine archive was not written either
    written, _, _ = part.unpack(_config(tmp_path / "local", **changed), [fine, stale])
    assert written
    with pytest.raises(ValueError, match=r"native/none was made under other `evaluation.short` config values"):
        part.unpack(_config(tmp_path / "other", evaluation={"suites": ["short"], "batch_size": 2}), [fine])
    # another suite's settings are not the short suite's: no conflict
    other_suite = {"suites": ["short"], "overrides": {"ruler": {"limit": 5}}}
    assert part.unpack(_config(tmp_path / "third", evaluation=other_suite), [fine])[0]


def test_an_archive_packed_before_manifests_is_unpacked_unchecked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    archive, old = tmp_path / "a.tar.gz", tmp_path / "old.tar.gz"
    part.pack(_finished_remote(tmp_path / "a"), archive, ["native/none"])
    with tarfile.open(archive) as tar, tarfile.open(old, "w:gz") as out:
        for member in tar.getmembers():
            if member.name != part.MANIFEST:
                out.addfile(member, tar.extractfile(member))
    written, _, _ = part.unpack(_config(tmp_path / "local"), [old])
    assert written and "no part.json" in capsys.readouterr().out


def test_a_file_outside_the_experiment_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("out/../../etc/passwd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="is not an output of experiment parts"):
        part.unpack(_config(tmp_path / "local"), [archive])


def test_a_run_restored_again_comes_whole_from_its_most_complete_restoration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    both = {"evaluation": {"suites": ["short", "ppl"]}}
    layout = Layout(_config(tmp_path / "local" / "results", **both)["outdir"])
    run = ("linear-4x", "linearard", 0)
    archives = {}
    records = part.JobRecords("parts")
    restore_log = Path(records.log(*records.restore_job(*run)))

    def evaluate_log(suite):
        return Path(records.log(*records.evaluate_job(*run[:2], suite, run[2])))

    for machine, suites_left in (("one", ["short", "ppl"]), ("two", ["short"]), ("three", ["ppl"]), ("four", [])):
        remote = _finished_remote(tmp_path / machine, machine, **both)
        remote_layout = Layout(remote["outdir"])
        for suite in {"short", "ppl"} - set(suites_left):  # cut off before this evaluation finished
            remote_layout.eval_result(*run[:2], suite, run[2]).unlink()
        for log in [restore_log] + [evaluate_log(suite) for suite in suites_left]:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"on {machine}\n")
        if machine == "four":  # cut off while restoring: the restore's log and nothing else
            for name in part.SMALL_OUTPUTS:
                (remote_layout.variant(*run) / name).unlink()
        archives[machine] = tmp_path / f"{machine}.tar.gz"
        # (four packs seed 1 too: an archive holds at least one finished evaluation)
        part.pack(remote, archives[machine], ["linear-4x/linearard/seed0"] + ["linear-4x/linearard/seed1"] * (machine == "four"))
        shutil.rmtree(tmp_path / "logs")

    def machine_of(path):
        return json.loads(path.read_text())["machine"]

    local = _config(tmp_path / "local" / "results", **both)
    _, _, dropped = part.unpack(local, [archives["one"], archives["two"]])  # the complete one wins
    assert dropped == [f"linear-4x/linearard/seed0: restored again in {archives['one']} (2 suites evaluated); "
                       f"dropped the restoration in {archives['two']} (1 suites)"]
    run_files = [layout.eval_result(*run[:2], suite, run[2]) for suite in ("short", "ppl")]
    run_files.append(layout.variant(*run) / "restore.json")
    assert {machine_of(path) for path in run_files} == {"one"}
    # the logs of the run's jobs come from the same restoration
    assert {log.read_text() for log in (restore_log, evaluate_log("short"), evaluate_log("ppl"))} == {"on one\n"}

    fresh = _config(tmp_path / "fresh" / "results", **both)
    fresh_layout = Layout(fresh["outdir"])
    part.unpack(fresh, [archives["two"]])
    _, _, dropped = part.unpack(fresh, [archives["three"]])  # a tie: the later restoration, never a mix
    assert dropped == [f"linear-4x/linearard/seed0: restored again in {archives['three']} (1 suites evaluated); "
                       "dropped the restoration in here (1 suites)"]
    assert not fresh_layout.eval_result(*run[:2], "short", run[2]).exists()
    assert machine_of(fresh_layout.eval_result(*run[:2], "ppl", run[2])) == "three"
    assert machine_of(fresh_layout.variant(*run) / "restore.json") == "three"
    assert restore_log.read_text() == evaluate_log("ppl").read_text() == "on three\n"
    assert not evaluate_log("short").exists()  # the dropped restoration's, removed with its result
    # the same restoration again changes nothing
    assert part.unpack(fresh, [archives["three"]]) == ([], [], [])
    # a copy with only a cut-off restore's log is no restoration: its log is a shared file, kept here
    written, kept, dropped = part.unpack(fresh, [archives["four"]])
    assert kept == [restore_log] and dropped == [] and not any("seed0" in str(path) for path in written)
    assert restore_log.read_text() == "on three\n"


def test_missing_names_the_runs_not_whole_here_for_the_next_part(tmp_path, capsys):
    config = _finished_remote(tmp_path)
    layout = Layout(config["outdir"])
    assert part.missing_runs(config) == []
    layout.eval_result("linear-4x", "linearard", "short", 1).unlink()  # a run cut off after its restore
    (layout.variant("linear-4x", "linearard", 0) / "train_log.csv").unlink()
    layout.eval_result("native", "none", "short").unlink()
    assert part.missing_runs(config) == [("native", "none", None), ("linear-4x", "linearard", 0),
                                         ("linear-4x", "linearard", 1)]
    assert part.missing_runs(config, ["linear-4x/none", "linear-4x/linearard/seed1"]) == [("linear-4x", "linearard", 1)]
    config_path = tmp_path / "config.yaml"
    config_path.write_text(ard_config.yaml.safe_dump(config))
    part.main(["missing", "--config", str(config_path)])
    printed = capsys.readouterr().out
    assert printed == "native/none linear-4x/linearard/seed0 linear-4x/linearard/seed1\n"
    # What it prints is the next part's --variants: exactly those runs.
    assert part.selected_runs(config, printed.split()) == part.missing_runs(config)
    part.main(["missing", "--config", str(config_path), "--variants", "linear-4x/none"])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "every selected run is whole here\n"
