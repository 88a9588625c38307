"""The keras-coordatt command line, run through main([...])."""

import pytest

from keras_coordatt.cli import main


def table(capsys, *arguments):
    assert main(["table", *arguments]) == 0
    return capsys.readouterr().out


def test_table_prints_a_markdown_header(capsys):
    out = table(capsys, "--families", "mobilenet_v2", "--widths", "0.5", "--attentions", "none")
    assert "| Model | Width | Attention | Params | Paper | M-Adds | Paper |" in out
    assert "| MobileNetV2 | 0.5 | none | 1,968,680 |  | 97.1M |  |" in out


def test_table_puts_the_papers_figures_beside_ours(capsys):
    out = table(capsys, "--families", "mobilenet_v2", "--widths", "1.0", "--attentions", "ca")
    assert "| MobileNetV2 | 1.0 | ca | 3,950,648 | 3.95M | 306.7M | 310M |" in out


def test_table_adds_the_mobilenext_placement_of_the_published_count(capsys):
    out = table(capsys, "--families", "mobilenext", "--widths", "1.0", "--attentions", "ca")
    assert "| MobileNeXt | 1.0 | ca (after dw2) | 4,088,113 | 4.09M |" in out


def test_table_lists_efficientnets_own_se(capsys):
    out = table(capsys, "--families", "efficientnet_b0", "--attentions", "none", "--input-size", "64")
    assert "| EfficientNet-B0 | 1.0 | efficientnet_se | 5,288,548 |" in out


def test_table_has_one_row_per_width_and_attention(capsys):
    out = table(
        capsys, "--families", "mobilenet_v2", "--widths", "0.5", "0.35",
        "--attentions", "none", "ca", "--input-size", "64",
    )
    assert sum(line.startswith("| MobileNetV2 |") for line in out.splitlines()) == 4


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        main(["tabel"])
    assert "usage: keras-coordatt" in capsys.readouterr().err


def test_table_task_detection_puts_ssdlite320_beside_the_paper(capsys):
    out = table(capsys, "--task", "detection", "--attentions", "ca")
    assert "| ca | SSDLite320 | 4,799,354 | 4.8M | -0.0% |" in out
    assert sum(line.startswith("| ca |") for line in out.splitlines()) == 1


def test_table_task_segmentation_gives_both_aspp_variants_and_their_difference(capsys):
    out = table(capsys, "--task", "segmentation", "--attentions", "none")
    assert "| none | separable ASPP on 1280 ch | 4,285,525 | 4.5M | -4.8% |" in out
    assert "| none | regular ASPP on 320 ch | 4,558,165 | 4.5M | +1.3% |" in out
