"""DB loss: finite everywhere, OHEM picks the hardest negatives, lower for better predictions."""
from __future__ import annotations

import math

import pytest
import torch

from doclab.detection.loss import NEGATIVES_WITHOUT_TEXT, db_loss, ohem_bce


def make_targets(batch=2, height=16, width=16):
    prob_map = torch.zeros(batch, height, width)
    prob_map[:, 4:10, 3:12] = 1.0
    thresh_map = torch.full((batch, height, width), 0.3)
    thresh_map[:, 2:12, 1:14] = 0.6
    thresh_mask = torch.zeros(batch, height, width)
    thresh_mask[:, 2:12, 1:14] = 1.0
    return {"prob_map": prob_map, "prob_mask": torch.ones(batch, height, width),
            "thresh_map": thresh_map, "thresh_mask": thresh_mask}


def maps_from(prob, thresh, k=50.0):
    return torch.stack([prob, thresh, torch.sigmoid(k * (prob - thresh))], dim=1)


def test_perfect_prediction_beats_a_bad_one():
    targets = make_targets()
    good = maps_from(targets["prob_map"] * 0.98 + 0.01, targets["thresh_map"])
    bad = maps_from(1 - targets["prob_map"], 1 - targets["thresh_map"])
    good_loss, bad_loss = db_loss(good, targets), db_loss(bad, targets)
    for key in ("loss", "loss_prob", "loss_thresh", "loss_binary"):
        assert good_loss[key] < bad_loss[key]
    assert good_loss["loss_thresh"] == pytest.approx(0.0, abs=1e-6)
    expected = 5 * good_loss["loss_prob"] + 10 * good_loss["loss_thresh"] + good_loss["loss_binary"]
    assert good_loss["loss"] == pytest.approx(expected.item())


def test_empty_masks_give_zero_finite_loss_and_gradients():
    targets = {key: torch.zeros(2, 8, 8) for key in ("prob_map", "prob_mask", "thresh_map", "thresh_mask")}
    maps = torch.rand(2, 3, 8, 8, requires_grad=True)
    losses = db_loss(maps, targets)
    for value in losses.values():
        assert torch.isfinite(value) and value.item() == 0.0
    losses["loss"].backward()
    assert torch.isfinite(maps.grad).all()


def test_ohem_keeps_all_positives_and_the_hardest_negatives():
    target = torch.tensor([[[1.0, 0, 0, 0, 0, 0, 0]]])
    prob = torch.tensor([[[0.6, 0.9, 0.1, 0.8, 0.2, 0.7, 0.05]]])
    loss = ohem_bce(prob, target, torch.ones_like(target), ohem_ratio=3.0)
    # One positive -> the three negatives with the highest probability: 0.9, 0.8, 0.7.
    expected = -(math.log(0.6) + math.log(0.1) + math.log(0.2) + math.log(0.3)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ohem_ignores_masked_pixels():
    target = torch.tensor([[[1.0, 0, 0]]])
    prob = torch.tensor([[[0.6, 0.99, 0.3]]])
    loss = ohem_bce(prob, target, torch.tensor([[[1.0, 0, 1]]]), ohem_ratio=3.0)
    assert loss.item() == pytest.approx(-(math.log(0.6) + math.log(0.7)) / 2, rel=1e-5)


def test_without_text_the_hardest_fixed_number_of_negatives_count():
    prob = torch.linspace(0.01, 0.99, 400).reshape(1, 20, 20)
    target = torch.zeros_like(prob)
    loss = ohem_bce(prob, target, torch.ones_like(prob))
    hardest = prob.flatten().sort(descending=True).values[:NEGATIVES_WITHOUT_TEXT]
    assert loss.item() == pytest.approx(-torch.log1p(-hardest).mean().item(), rel=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_finite_float32_losses(dtype):
    targets = make_targets()
    # Saturated probabilities: log(0) and log(1 - 1) would be -inf without the clamp.
    maps = maps_from(1 - targets["prob_map"], targets["thresh_map"]).to(dtype).requires_grad_()
    half_targets = {key: value.to(dtype) for key, value in targets.items()}
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        losses = db_loss(maps, half_targets)
    for value in losses.values():
        assert value.dtype == torch.float32 and torch.isfinite(value)
    losses["loss"].backward()
    assert torch.isfinite(maps.grad.float()).all()


def test_ohem_without_host_sync_picks_the_same_pixels_as_topk():
    from doclab.detection.loss import ohem_bce

    generator = torch.Generator().manual_seed(0)
    for text_fraction in (0.0, 0.02, 0.3, 0.9):
        prob = torch.rand(2, 32, 32, generator=generator)
        target = (torch.rand(2, 32, 32, generator=generator) < text_fraction).float()
        mask = (torch.rand(2, 32, 32, generator=generator) > 0.1).float()
        host = ohem_bce(prob, target, mask, on_device=False)
        device = ohem_bce(prob, target, mask, on_device=True)
        torch.testing.assert_close(device, host, rtol=1e-6, atol=1e-7)
    empty = torch.zeros(1, 4, 4)
    assert ohem_bce(torch.rand(1, 4, 4), empty, empty, on_device=True) == 0
