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
    out = table(capsys, "--families", "efficientnet_b0", "--attentions", "none", "--input_size", "64")
    assert "| EfficientNet-B0 | 1.0 | efficientnet_se | 5,288,548 |" in out


def test_table_has_one_row_per_width_and_attention(capsys):
    out = table(
        capsys, "--families", "mobilenet_v2", "--widths", "0.5", "0.35",
        "--attentions", "none", "ca", "--input_size", "64",
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


# --- option spelling: underscores, the old dashed spelling still taken -----------

DASHED = [
    (["table"], "--input-size", "64", "input_size", 64),
    (["convert", "a.pth", "b.keras"], "--input-size", "96", "input_size", 96),
    (["convert", "a.pth", "b.keras"], "--random-attention", None, "random_attention", True),
    (["export", "m.keras", "--output", "x"], "--input-size", "32", "input_size", 32),
    (["export", "m.keras", "--output", "x"], "--check-split", "val", "check_split", "val"),
    (["export", "m.keras", "--output", "x"], "--check-examples", "8", "check_examples", 8),
    (["export", "m.keras", "--output", "x"], "--calibration-split", "a", "calibration_split", "a"),
    (["export", "m.keras", "--output", "x"], "--calibration-examples", "9",
     "calibration_examples", 9),
    (["export", "m.keras", "--output", "x"], "--data-dir", "d", "data_dir", "d"),
    (["export", "m.keras", "--output", "x"], "--min-agreement", "0.5", "min_agreement", 0.5),
    (["export", "m.keras", "--output", "x"], "--top-k", "3", "top_k", 3),
    (["explain", "m.keras", "a.png", "--output", "x"], "--attention-layer", "block_1_attention",
     "attention_layer", "block_1_attention"),
]


def parsed(capsys, argv):
    from keras_coordatt.cli import build_parser

    args = build_parser().parse_args(argv)
    return args, capsys.readouterr().err


@pytest.mark.parametrize("command, dashed, value, field, expected", DASHED)
def test_options_are_spelled_with_underscores(capsys, command, dashed, value, field, expected):
    option = dashed.replace("-", "_").replace("__", "--", 1)
    args, err = parsed(capsys, command + [option] + ([value] if value else []))
    assert getattr(args, field) == expected
    assert err == ""


@pytest.mark.parametrize("command, dashed, value, field, expected", DASHED)
def test_the_old_dashed_spelling_still_works_with_a_one_line_note(capsys, command, dashed, value,
                                                                  field, expected):
    args, err = parsed(capsys, command + [dashed] + ([value] if value else []))
    assert getattr(args, field) == expected
    new = dashed.replace("-", "_").replace("__", "--", 1)
    assert err == (f"keras-coordatt {command[0]}: {dashed} is now {new}; the old spelling works "
                   "for now\n")


def test_an_unused_old_spelling_leaves_the_default(capsys):
    args, err = parsed(capsys, ["convert", "a.pth", "b.keras"])
    assert (args.input_size, args.random_attention, err) == (224, False, "")


@pytest.mark.parametrize("command", ["table", "convert", "export", "train", "evaluate", "explain",
                                     "predict"])
def test_help_lists_every_option_with_underscores_only(capsys, command):
    import re

    with pytest.raises(SystemExit):
        main([command, "--help"])
    options = re.findall(r"(?<![\w-])--[a-z][\w-]*", capsys.readouterr().out)
    assert options and [option for option in options if "-" in option[2:]] == []


def test_a_dashed_spelling_with_a_bad_value_is_refused_like_the_option(capsys):
    with pytest.raises(SystemExit):
        main(["table", "--input-size", "big"])
    assert "argument --input-size: invalid int value: 'big'" in capsys.readouterr().err
