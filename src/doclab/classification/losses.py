"""Classification losses on soft targets (label smoothing, class weights, focal) and mixup / cutmix.

Targets are always (B, C) class probabilities: one-hot, smoothed or mixed, so one loss function
serves plain, smoothed and mixed batches alike.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from doclab.config import ClassifierParams

LossFn = Callable[[Tensor, Tensor], Tensor]
CUTMIX_SHARE = 0.5  # with both alphas on, a mixed batch is cut-mixed this often (as timm's Mixup)


def soft_targets(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """One-hot targets with label smoothing.

    Args:
        labels: (B,) int64 class indices.
        num_classes: C.
        smoothing: eps; the true class gets 1 - eps + eps / C, every class eps / C (as
            `F.cross_entropy(label_smoothing=eps)`).
    Returns:
        (B, C) float32 probabilities.
    """
    one_hot = F.one_hot(labels, num_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / num_classes


def cross_entropy_loss(logits: Tensor, targets: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean over the batch of -sum_c w_c t_c log p_c.

    Args:
        logits: (B, C).
        targets: (B, C) probabilities (see `soft_targets`, `mix_batch`).
        weights: (C,) class weights, or None for 1.
    Returns:
        Scalar loss.
    """
    return F.cross_entropy(logits.float(), targets, weight=weights)


def focal_loss(logits: Tensor, targets: Tensor, gamma: float, weights: Tensor | None = None) -> Tensor:
    """Focal loss (Lin et al. 2017): mean over the batch of -sum_c w_c t_c (1 - p_c)^gamma log p_c.

    Confidently right samples ((1 - p) small) contribute little, so the gradient goes to the hard
    ones; gamma = 0 is exactly `cross_entropy_loss`.

    Args:
        logits: (B, C).
        targets: (B, C) probabilities.
        gamma: focusing exponent >= 0.
        weights: (C,) class weights, or None for 1.
    Returns:
        Scalar loss.
    """
    log_probs = F.log_softmax(logits.float(), dim=1)
    terms = -targets * (1.0 - log_probs.exp()).pow(gamma) * log_probs
    if weights is not None:
        terms = terms * weights
    return terms.sum(dim=1).mean()


def build_loss(params: ClassifierParams, weights: Tensor | None) -> tuple[LossFn, float]:
    """The configured loss and the label smoothing its targets get.

    Args:
        params: `classifier` (loss, label_smoothing, focal_gamma).
        weights: (C,) class weights (see `data.class_weights`), or None.
    Returns:
        (loss(logits (B, C), targets (B, C)) -> scalar, smoothing for `soft_targets`): label
        smoothing belongs to `ce`; focal loss uses hard targets.
    """
    if params.loss == "focal":
        return (lambda logits, targets: focal_loss(logits, targets, params.focal_gamma, weights)), 0.0
    return (lambda logits, targets: cross_entropy_loss(logits, targets, weights)), params.label_smoothing


def mix_batch(images: Tensor, targets: Tensor, mixup_alpha: float, cutmix_alpha: float,
              mix_p: float) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) of a batch with its reverse (timm's 'batch' mode).

    Draws from torch's global RNG, which the training checkpoints save, so a resumed run mixes
    exactly as an uninterrupted one.

    Args:
        images: (B, 3, H, W).
        targets: (B, C) probabilities.
        mixup_alpha: Beta(alpha, alpha) of the mixup weight; 0 = no mixup.
        cutmix_alpha: Beta(alpha, alpha) of the kept area; 0 = no cutmix.
        mix_p: probability that the batch is mixed at all.
    Returns:
        (images, targets) of the same shapes; the inputs when the batch is not mixed.
    """
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or float(torch.rand(())) >= mix_p:
        return images, targets
    cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or float(torch.rand(())) < CUTMIX_SHARE)
    alpha = cutmix_alpha if cutmix else mixup_alpha
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner_images, partner_targets = images.flip(0), targets.flip(0)
    if cutmix:
        images, lam = _paste_box(images, partner_images, lam)
    else:
        images = images * lam + partner_images * (1.0 - lam)
    return images, targets * lam + partner_targets * (1.0 - lam)


def _paste_box(images: Tensor, partner: Tensor, lam: float) -> tuple[Tensor, float]:
    """Paste a box of about (1 - lam) of the area from `partner`; returns the images and the kept fraction."""
    height, width = images.shape[-2:]
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(torch.randint(0, height, ())), int(torch.randint(0, width, ()))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = images.clone()
    mixed[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
    # The box may be clipped at the border: the label weight follows the pixels actually pasted.
    return mixed, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
