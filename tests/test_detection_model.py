"""DBNet model: level selection, every supported backbone, decoders, weights loading, errors."""
from __future__ import annotations

import socket
import time

import pytest
import timm
import torch
from huggingface_hub import constants as hub_constants
from safetensors.torch import save_file

from doclab.config import ConfigError
from doclab.config.schema import DetectorParams
from doclab.detection.backbone import Backbone, create_backbone, select_levels
from doclab.detection.decoder import FPNDecoder, UNetDecoder, build_decoder
from doclab.detection.model import PROB_PRIOR, DBNet, build_detector

# The quick run covers one ResNet and one MobileNet; --run-slow covers every listed backbone.
FAST_BACKBONES = ("resnet18", "mobilenetv3_large_100")
BACKBONES = [
    name if name in FAST_BACKBONES else pytest.param(name, marks=pytest.mark.slow)
    for name in ("resnet18", "resnet34", "resnet50", "tf_efficientnet_b3", "hrnet_w18", "hrnet_w32",
                 "hrnet_w44", "hrnet_w48", "convnext_tiny", "mobilenetv3_large_100", "mixnet_l")
]
SMALL = DetectorParams(decoder_channels=32)


def hub_reachable() -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=2):
            return True
    except OSError:
        return False


def _levels(*strides: int) -> list[dict]:
    return [{"num_chs": 8 * (i + 1), "reduction": s, "index": i} for i, s in enumerate(strides)]


def test_select_levels_drops_stem_and_keeps_deepest_of_repeated_stride():
    assert select_levels(_levels(2, 4, 4, 8, 16, 32)) == (2, 3, 4, 5)


def test_select_levels_keeps_exactly_four_levels():
    assert select_levels(_levels(4, 8, 16, 32)) == (0, 1, 2, 3)


def test_select_levels_uses_position_without_index():
    info = [{"reduction": s} for s in (2, 4, 8, 16, 32)]
    assert select_levels(info) == (1, 2, 3, 4)


@pytest.mark.parametrize("strides", [(16, 16, 16), (8, 16, 32), (4, 8, 8, 32)])
def test_select_levels_too_few_strides(strides):
    with pytest.raises(ValueError, match="distinct stride"):
        select_levels(_levels(*strides))


def test_vit_without_four_strides_is_rejected_by_name():
    with pytest.raises(ValueError, match="vit_tiny_patch16_224"):
        create_backbone("vit_tiny_patch16_224")


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_builds_trains_and_infers(name):
    torch.manual_seed(0)
    model = build_detector(name, SMALL, pretrained=False)
    with torch.device("meta"):
        info = timm.create_model(name, features_only=True).feature_info.get_dicts()
    chosen = [info[i] for i in select_levels(info)]
    assert model.backbone.channels == tuple(d["num_chs"] for d in chosen)
    assert model.backbone.strides == tuple(d["reduction"] for d in chosen)
    assert model.backbone.strides[-1] == 32

    x = torch.randn(1, 3, 64, 64)
    out = model.train()(x)
    assert out.shape == (1, 3, 64, 64)
    assert torch.isfinite(out).all() and ((out > 0) & (out < 1)).all()
    out.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    with torch.no_grad():
        prob = model.eval()(x)
    assert prob.shape == (1, 1, 64, 64)


def test_odd_input_size_gives_input_sized_maps():
    model = build_detector("resnet18", SMALL, pretrained=False)
    assert model.train()(torch.randn(1, 3, 96, 160)).shape == (1, 3, 96, 160)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 100, 150)).shape == (1, 1, 100, 150)


def test_binary_map_is_sigmoid_of_k_times_difference():
    model = build_detector("resnet18", DetectorParams(decoder_channels=32, k=10.0), pretrained=False)
    prob, thresh, binary = model.train()(torch.randn(2, 3, 64, 64)).unbind(dim=1)
    assert torch.allclose(binary, torch.sigmoid(10.0 * (prob - thresh)), atol=1e-6)


def test_maps_are_float32_under_autocast():
    model = build_detector("resnet18", SMALL, pretrained=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.train()(torch.randn(1, 3, 64, 64))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 64, 64)


def test_probability_starts_near_prior():
    model = build_detector("resnet18", SMALL, pretrained=False)
    with torch.no_grad():
        prob = model.eval()(torch.randn(1, 3, 64, 64))
    assert abs(prob.mean().item() - PROB_PRIOR) < 0.05


@pytest.mark.parametrize("kind", ["fpn", "unet", "fpn_asf"])
def test_decoders_output_level0_resolution(kind):
    channels, strides = (16, 24, 40, 64), (4, 8, 16, 32)
    decoder = build_decoder(kind, channels, strides, 32)
    # 100x130 input: the levels do not halve exactly, as after a backbone on an odd image size.
    features = [torch.randn(2, c, -(-100 // s), -(-130 // s)) for c, s in zip(channels, strides)]
    out = decoder(features)
    assert out.shape == (2, 32, 25, 33)
    assert decoder.out_channels == 32 and decoder.out_stride == 4


def test_fpn_asf_adds_attention_and_changes_output():
    torch.manual_seed(0)
    plain = FPNDecoder((16, 24, 40, 64), (4, 8, 16, 32), 32)
    torch.manual_seed(0)
    asf = FPNDecoder((16, 24, 40, 64), (4, 8, 16, 32), 32, adaptive_fusion=True)
    features = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip((16, 24, 40, 64), (4, 8, 16, 32))]
    assert sum(p.numel() for p in asf.parameters()) > sum(p.numel() for p in plain.parameters())
    assert not torch.allclose(plain(features), asf(features))


def test_unet_decoder_and_bad_settings():
    assert isinstance(build_decoder("unet", (8, 8, 8, 8), (4, 8, 16, 32), 16), UNetDecoder)
    with pytest.raises(ValueError, match="detector.decoder"):
        build_decoder("bifpn", (8, 8, 8, 8), (4, 8, 16, 32), 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_decoder("fpn", (8, 8, 8, 8), (4, 8, 16, 32), 30)
    with pytest.raises(ValueError, match="increase"):
        build_decoder("fpn", (8, 8, 8, 8), (4, 16, 8, 32), 16)


def test_channels_last_backbone_is_returned_as_nchw():
    backbone = create_backbone("swin_tiny_patch4_window7_224")
    assert backbone.channels_last
    with torch.no_grad():
        features = backbone.eval()(torch.randn(1, 3, 224, 224))
    expected = [(c, 224 // s, 224 // s) for c, s in zip(backbone.channels, backbone.strides)]
    assert [tuple(f.shape[1:]) for f in features] == expected


def test_backbone_rejects_a_body_without_four_increasing_strides():
    with pytest.raises(ValueError, match="4 increasing strides"):
        Backbone(timm.create_model("resnet18", features_only=True), "resnet18")


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet1000' \(closest: .*resnet101"):
        create_backbone("resnet1000")


@pytest.mark.skipif(hub_reachable(), reason="the Hugging Face hub is reachable here")
def test_pretrained_offline_fails_fast_with_fix():
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        build_detector("resnet18", SMALL, pretrained=True)
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert "\n" not in message
    assert "'resnet18'" in message and "pretrained: false" in message
    assert "detector.backbone_weights" in message and "HF_HUB_OFFLINE" in message
    assert not hub_constants.HF_HUB_OFFLINE  # the temporary offline switch was restored


@pytest.mark.skipif(hub_reachable(), reason="the Hugging Face hub is reachable here")
def test_pretrained_offline_uses_hub_cache(tmp_path, monkeypatch):
    full = timm.create_model("resnet18")
    snapshot = tmp_path / "models--timm--resnet18.a1_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(full.state_dict(), snapshot / "model.safetensors")
    (tmp_path / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    backbone = create_backbone("resnet18", pretrained=True)
    assert torch.equal(backbone.body.state_dict()["layer4.1.conv2.weight"], full.state_dict()["layer4.1.conv2.weight"])


def test_pretrained_without_published_weights_says_so():
    with pytest.raises(ValueError, match="'botnet50ts_256' has no pretrained weights"):
        create_backbone("botnet50ts_256", pretrained=True)


def _assert_loaded(backbone: Backbone, saved: dict) -> None:
    own = backbone.body.state_dict()
    saved_by_key = {k.replace(".", "_"): v for k, v in saved.items()}
    weights = [k for k in own if not k.endswith("num_batches_tracked")]
    assert weights and all(torch.equal(own[k], saved_by_key[k.replace(".", "_")]) for k in weights)


def test_local_weights_pth_load_into_backbone(tmp_path):
    torch.manual_seed(1)
    saved = timm.create_model("resnet18").state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(saved, path)
    model = build_detector("resnet18", DetectorParams(decoder_channels=32, backbone_weights=str(path)), False)
    _assert_loaded(model.backbone, saved)


def test_local_weights_safetensors_with_renamed_feature_keys(tmp_path):
    torch.manual_seed(2)
    saved = timm.create_model("convnext_tiny", num_classes=0).state_dict()
    path = tmp_path / "convnext.safetensors"
    save_file(saved, path)
    backbone = create_backbone("convnext_tiny", weights_path=str(path))
    assert "stem_0.weight" in backbone.body.state_dict()  # key differs from the file's 'stem.0.weight'
    _assert_loaded(backbone, saved)


def test_local_weights_of_another_model_are_rejected(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit timm model 'resnet18'.*shape"):
        create_backbone("resnet18", weights_path=str(path))


def test_missing_weights_file_names_path_and_key(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match=r"detector.backbone_weights.*nope.safetensors"):
        create_backbone("resnet18", weights_path=str(path))


def test_dbnet_is_a_module_returning_tensors():
    model = build_detector("resnet18", DetectorParams(decoder="fpn_asf", decoder_channels=32), False)
    assert isinstance(model, DBNet) and model.training
    assert isinstance(model(torch.randn(1, 3, 64, 64)), torch.Tensor)
