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
