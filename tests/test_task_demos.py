"""The detection and segmentation demos' command lines (their runs are the trainer's, tested there)."""

import argparse

import pytest

from training import deepforest_demo
from training import stardist_demo


@pytest.mark.parametrize("demo", [deepforest_demo, stardist_demo])
def test_a_demo_passes_its_deadline_to_every_run_and_refuses_no_parallel_runs(demo, capsys):
    parser_args = dict(output="out", start="scratch", alpha=None, epochs=3, tile_overlap=0.5,
                       anchor_scale=0.6, image_size=256, deadline_minutes=7.5)
    config = demo.demo_config(argparse.Namespace(**parser_args), "ca", 1, None)
    assert config.deadline_minutes == 7.5 and config.output_dir.endswith("scratch_ca_seed1")
    config.validate()
    with pytest.raises(SystemExit):
        demo.main(["--parallel", "0"])
    assert "--parallel 0: must be at least 1" in capsys.readouterr().err


def test_the_detection_demo_trains_the_papers_attentions_and_the_per_image_ca_when_asked():
    from keras_coordatt.layers import CoordAttention
    from keras_coordatt.training.networks import task_model

    assert deepforest_demo.argument_parser().parse_args([]).attentions == ["none", "se", "ca"]
    args = deepforest_demo.argument_parser().parse_args(
        ["--start", "scratch", "--attentions", "ca", "ca_ln"])
    built = {}
    for attention in ("ca", "ca_ln"):
        config = deepforest_demo.demo_config(args, attention, 0, None)
        config.validate()
        layers = [layer for layer in task_model(config, 1).layers
                  if isinstance(layer, CoordAttention)]
        built[attention] = {layer.normalization for layer in layers}, len(layers)
        assert config.output_dir.endswith(f"scratch_{attention}_seed0")
    assert built == {"ca": ({"batch"}, 16), "ca_ln": ({"layer"}, 16)}


def test_the_detection_demo_clips_the_global_norm_unless_told_0():
    default = deepforest_demo.argument_parser().parse_args([])
    assert deepforest_demo.demo_config(default, "ca", 0, None).clip_global_norm == 6.0
    off = deepforest_demo.argument_parser().parse_args(["--clip_global_norm", "0"])
    config = deepforest_demo.demo_config(off, "ca", 0, None)
    assert config.clip_global_norm is None
    config.validate()


def test_a_run_a_deadline_stopped_is_continued_not_reused_and_a_finished_one_is_reused(tmp_path):
    import dataclasses
    import json

    from keras_coordatt.training.config import TrainConfig
    from training import task_demo

    config = TrainConfig(output_dir=str(tmp_path / "run"), epochs=3)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(dataclasses.asdict(config)))

    def record(epochs_trained, ap):
        (tmp_path / "run" / "metrics.json").write_text(json.dumps({"epochs_trained": epochs_trained}))
        (tmp_path / "run" / "test_metrics.json").write_text(json.dumps({"AP": ap}))

    calls = []

    def run_one(run_config, attention, seed):
        calls.append((attention, seed))
        return {"AP": 0.2}

    def grid(**kwargs):
        return task_demo.run_grid([0], ["ca"], lambda attention, seed: config, run_one,
                                  lambda r: f"AP {r['AP']}", **kwargs)

    record(1, 0.1)  # stopped by a deadline after 1 of 3 epochs, and tested
    assert grid()[0]["AP"] == 0.2 and calls == [("ca", 0)]  # continued and tested again
    record(1, 0.1)
    assert grid(after_parallel=True)[0]["AP"] == 0.1 and len(calls) == 1  # just tested
    record(3, 0.3)  # trained to its epochs: reused as it is
    assert grid()[0]["AP"] == 0.3 and len(calls) == 1
    assert task_demo.finished_result(dataclasses.replace(config, epochs=4)) is None


def test_the_tables_read_the_last_epoch_of_a_runs_history_and_name_a_run_without_one(tmp_path):
    from keras_coordatt.training.config import TrainConfig
    from training import task_demo

    config = TrainConfig(output_dir=str(tmp_path), epochs=2)
    with pytest.raises(ValueError, match="history.csv: no epoch recorded"):
        task_demo.last_epoch(config, "boxes_loss")
    (tmp_path / "history.csv").write_text("epoch,boxes_loss\n1,2.5\n2,1.75\n")
    assert task_demo.last_epoch(config, "boxes_loss") == 1.75


def test_the_table_has_a_row_for_every_attention_trained_in_the_order_run(tmp_path):
    from training import task_demo

    runs = [dict(attention=a, seed=s, params=p, AP50=v) for a, p, values in
            (("none", 10, (0.1, 0.3)), ("ca_ln", 12, (0.2, 0.4)), ("eca", 11, (0.5, 0.5)))
            for s, v in enumerate(values)]
    rows = task_demo.summary_rows(runs, ["AP50"])
    assert [(r["attention"], r["params"], r["runs"]) for r in rows] == [
        ("none", 10, 2), ("ca_ln", 12, 2), ("eca", 11, 2)]
    assert [r["AP50"] for r in rows] == pytest.approx([0.2, 0.3, 0.5])
    assert rows[0]["AP50_std"] == pytest.approx(0.1414, abs=1e-4)
    table = task_demo.results_table(runs, ["AP50"], ["AP50"])
    assert "| ca_ln | 12 | 2 | 0.300 ± 0.141 |" in table
    task_demo.plot_runs(runs, ["AP50"], ["AP50"], tmp_path / "runs.png", "three attentions")
    assert (tmp_path / "runs.png").stat().st_size > 0
