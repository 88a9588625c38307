"""training.attention_epochs: a run's loss beside its gates, epoch by epoch."""

import pytest

from keras_coordatt.training.attention_monitor import CSV_FILE
from keras_coordatt.training.attention_monitor import FIELDS
from training import attention_epochs


def write_run(folder, fields=FIELDS):
    rows = []
    for epoch, moved in ((0, (0.0, 0.0)), (1, (0.01, 0.03)), (2, (0.02, 0.30))):
        for layer, from_start in zip(("block_1_attention", "block_16_attention"), moved):
            rows.append({"epoch": epoch, "layer": layer, "type": "CoordAttention",
                         "mean": 0.5 + from_start, "std": 0.0, "position_std": 0.0,
                         "channel_std": 0.0, "from_start": from_start,
                         "saturated": 0.25 if from_start > 0.1 else 0.0,
                         "mode_gap": 0.2 if from_start > 0.1 else 0.001,
                         "grad_norm": 0.1 * (epoch + 1), "reader_grad_norm": 0.2,
                         "grad_ratio": 0.5, "seconds": 1.0})
    lines = [",".join(fields)] + [",".join(str(row[key]) for key in fields) for row in rows]
    (folder / CSV_FILE).write_text("\n".join(lines) + "\n")
    (folder / "history.csv").write_text(
        "epoch,boxes_loss,val_boxes_loss\n1,2.5,2.4\n2,2.4,6.6\n")


def test_each_epoch_shows_the_loss_beside_the_layer_that_moved_most(tmp_path, capsys):
    write_run(tmp_path)
    rows = attention_epochs.epoch_rows(str(tmp_path), "boxes_loss")
    assert [row["epoch"] for row in rows] == [1, 2]  # the start (epoch 0) is not a row
    assert rows[1]["held_out_loss"] == 6.6 and rows[1]["most_moved"] == "block_16_attention"
    assert rows[1]["most_moved_saturated"] == 0.25
    assert rows[1]["mean_from_start"] == pytest.approx(0.16)
    assert rows[0]["attention_grad"] == pytest.approx(0.2)  # the median of the two layers
    assert attention_epochs.main([str(tmp_path), "--loss", "boxes_loss"]) == 0
    assert rows[1]["largest_mode_gap"] == 0.2 and rows[0]["largest_mode_gap"] == 0.001
    assert ("| 2 | 2.40 | 6.60 | 0.1600 | block_16_attention | 0.300 | 25.0% | 0.300 / 0.200 "
            "| 0.200 |") in capsys.readouterr().out


def test_records_from_before_the_mode_gap_column_leave_it_empty(tmp_path, capsys):
    write_run(tmp_path, fields=[key for key in FIELDS if key != "mode_gap"])
    assert attention_epochs.main([str(tmp_path), "--loss", "boxes_loss"]) == 0
    assert "| 0.300 | 25.0% | 0.300 / 0.200 |  |" in capsys.readouterr().out


def test_a_missing_record_or_column_is_named(tmp_path, capsys):
    assert attention_epochs.main([str(tmp_path)]) == 2
    assert f"{tmp_path}: no attention.csv" in capsys.readouterr().err
    write_run(tmp_path)
    assert attention_epochs.main([str(tmp_path), "--loss", "box"]) == 2
    assert "has no column 'box'; it has boxes_loss, val_boxes_loss" in capsys.readouterr().err
