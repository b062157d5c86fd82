"""RRDBNet: parameter names of Real-ESRGAN's checkpoints, and the config read from shapes."""

from __future__ import annotations

from srjudge.models.rrdbnet import RRDBConfig, RRDBNet, infer_config
from tests.sr.helpers import TINY


def test_rrdbnet_parameter_names_match_realesrgan_keys() -> None:
    keys = set(RRDBNet(RRDBConfig(**TINY)).state_dict())
    expected = {"conv_first.weight", "body.0.rdb1.conv1.weight", "body.0.rdb3.conv5.bias", "conv_body.weight"}
    assert expected | {"conv_up1.weight", "conv_up2.bias", "conv_hr.weight", "conv_last.bias"} <= keys
    assert len(keys) == 2 * (1 + 15 + 1 + 2 + 2)
    x2 = RRDBNet(RRDBConfig(**TINY, unshuffle=2))
    assert x2.conv_first.weight.shape == (8, 12, 3, 3) and x2.scale == 2
    assert RRDBNet(RRDBConfig(**TINY, unshuffle=4)).scale == 1


def test_infer_config_reads_shapes() -> None:
    state = RRDBNet(RRDBConfig(num_feat=12, num_block=3, num_grow_ch=6, unshuffle=2)).state_dict()
    assert infer_config(state) == RRDBConfig(
        num_feat=12, num_block=3, num_grow_ch=6, num_upsample=2, unshuffle=2
    )
