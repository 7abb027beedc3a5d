"""DB loss (Liao et al., "Real-time Scene Text Detection with Differentiable Binarization",
AAAI 2020, section "Optimization"): L = prob_weight * L_s + binary_weight * L_b + thresh_weight * L_t.

L_s is binary cross-entropy on the probability map with online hard example mining (all
positives, the hardest negatives up to a 1:ohem_ratio ratio), L_t a masked L1 on the
threshold map inside the dilated polygons, and L_b a dice loss on the approximate binary
map (the paper uses BCE for L_b too; dice, as in the authors' released code, is
insensitive to the positive/negative imbalance and needs no mining).

Everything is computed in float32 even under autocast: log(P) of a float16 P near 0 or 1
is -inf, and sums over a whole batch overflow float16.
"""
from __future__ import annotations

import torch

# Images without any text still teach the model something: its hardest background pixels.
NEGATIVES_WITHOUT_TEXT = 100


def db_loss(
    maps: torch.Tensor,
    targets: dict[str, torch.Tensor],
    *,
    prob_weight: float = 5.0,
    thresh_weight: float = 10.0,
    binary_weight: float = 1.0,
    ohem_ratio: float = 3.0,
    eps: float = 1e-6,
) -> dict[str, torch.Tensor]:
    """The DB training loss for a batch.

    Args:
        maps: (B, 3, H, W) head output: probability P (after sigmoid), threshold T and
            approximate binary map 1 / (1 + exp(-k (P - T))); any float dtype.
        targets: (B, H, W) tensors `prob_map`, `prob_mask`, `thresh_map`, `thresh_mask`
            (as from `make_db_targets`, batched).
        prob_weight: weight of the probability-map BCE.
        thresh_weight: weight of the threshold-map L1.
        binary_weight: weight of the binary-map dice loss.
        ohem_ratio: at most this many hardest negatives per positive pixel in the BCE.
        eps: clamp for P inside the logs and smoothing of every ratio.
    Returns:
        float32 scalar tensors `loss` (the weighted sum), `loss_prob`, `loss_thresh` and
        `loss_binary`; each term is 0 where its mask is empty.
    """
    with torch.autocast(device_type=maps.device.type, enabled=False):
        maps = maps.float()
        prob_map, prob_mask = targets["prob_map"].float(), targets["prob_mask"].float()
        loss_prob = ohem_bce(maps[:, 0], prob_map, prob_mask, ohem_ratio=ohem_ratio, eps=eps)
        loss_thresh = masked_l1(maps[:, 1], targets["thresh_map"].float(), targets["thresh_mask"].float(), eps=eps)
        loss_binary = dice_loss(maps[:, 2], prob_map, prob_mask, eps=eps)
        loss = prob_weight * loss_prob + thresh_weight * loss_thresh + binary_weight * loss_binary
    return {"loss": loss, "loss_prob": loss_prob, "loss_thresh": loss_thresh, "loss_binary": loss_binary}


def ohem_bce(
    prob: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, ohem_ratio: float = 3.0, eps: float = 1e-6,
    on_device: bool | None = None,
) -> torch.Tensor:
    """Binary cross-entropy over all positives and the hardest negatives of the batch.

    Text covers a few percent of a receipt, so plain BCE is dominated by easy background;
    DBNet keeps every positive and only the `ohem_ratio` times as many highest-loss
    negatives (NEGATIVES_WITHOUT_TEXT when the batch has no text).

    Args:
        prob: (B, H, W) float32 probabilities.
        target: (B, H, W) 0/1 float32.
        mask: (B, H, W) 0/1 float32; 0 pixels count neither way.
        ohem_ratio: negatives kept per positive.
        eps: P is clamped to [eps, 1 - eps] and the mean's denominator smoothed by eps.
        on_device: count and pick the negatives on the device, without a host sync (default: on CUDA).
    Returns:
        Scalar: mean BCE over the selected pixels (0 when the mask is empty).
    """
    positive = target * mask
    negative = (1 - target) * mask
    prob = prob.clamp(eps, 1 - eps)
    bce = -(target * torch.log(prob) + (1 - target) * torch.log1p(-prob))
    if on_device if on_device is not None else prob.is_cuda:
        return _ohem_on_device(bce, positive, negative, ohem_ratio, eps)
    positives, available = (int(n) for n in torch.stack([positive.sum(), negative.sum()]).round().tolist())
    wanted = int(positives * ohem_ratio) if positives else NEGATIVES_WITHOUT_TEXT
    negatives = min(available, wanted)
    hardest = torch.topk((bce * negative).flatten(), negatives, sorted=False).values
    return ((bce * positive).sum() + hardest.sum()) / (positives + negatives + eps)


def _ohem_on_device(bce: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, ohem_ratio: float,
                    eps: float) -> torch.Tensor:
    """`ohem_bce` without a host sync: topk needs its k on the host, a sort and a device-side count do not.

    The same pixels as the topk path; the sums may differ in the last bits (another summation order).
    """
    positives, available = positive.sum().round(), negative.sum().round()
    wanted = torch.where(positives > 0, torch.floor(positives * ohem_ratio),
                         torch.full_like(positives, NEGATIVES_WITHOUT_TEXT))
    negatives = torch.minimum(available, wanted)
    ranked = (bce * negative).flatten().sort(descending=True).values
    hardest = (ranked * (torch.arange(ranked.numel(), device=ranked.device) < negatives)).sum()
    return ((bce * positive).sum() + hardest) / (positives + negatives + eps)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Mean |pred - target| over mask (0 when the mask is empty); all (B, H, W) float32."""
    return ((pred - target).abs() * mask).sum() / (mask.sum() + eps)


def dice_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """1 - 2 |P n G| / (|P| + |G|) over mask, smoothed by eps in numerator and denominator so
    an empty mask, or no text predicted where there is none, gives 0; all (B, H, W) float32."""
    intersection = (pred * target * mask).sum()
    union = (pred * mask).sum() + (target * mask).sum()
    return 1 - (2 * intersection + eps) / (union + eps)
