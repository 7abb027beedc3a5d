"""DBNet (Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020).

Backbone (any timm model) -> decoder (FPN / U-Net / FPN+ASF) -> DB head giving the probability
map P, the threshold map T and, in training, the approximate binary map B = sigmoid(k (P - T)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from doclab.config import DetectorParams
from doclab.detection.backbone import Backbone, create_backbone
from doclab.detection.decoder import build_decoder

# Initial text probability of every pixel (bias prior as in RetinaNet, Lin et al. 2017, Sec. 4.1).
# Text covers roughly a tenth of a receipt; starting at 0.5 everywhere makes the first steps spend
# their gradient pushing the many background pixels down (large BCE on most pixels) and makes
# early checkpoints post-process into one image-sized box.
PROB_PRIOR = 0.1
# Threshold map starts at sigmoid(0) = 0.5, the middle of DBNet's target range [0.3, 0.7].
THRESH_PRIOR = 0.5
# Small weights on the last layer so each map starts close to its prior everywhere.
LAST_LAYER_STD = 0.01


def _map_branch(channels: int, prior: float) -> nn.Sequential:
    """conv3x3-BN-ReLU, then two stride-2 transposed convs (x4 upsampling) to one logit map."""
    mid = max(channels // 4, 1)
    branch = nn.Sequential(
        nn.Conv2d(channels, mid, 3, padding=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, mid, 2, stride=2),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, 1, 2, stride=2),
    )
    init_dbnet_weights(branch)
    nn.init.normal_(branch[-1].weight, std=LAST_LAYER_STD)
    nn.init.constant_(branch[-1].bias, -math.log((1 - prior) / prior))
    return branch


def init_dbnet_weights(module: nn.Module) -> None:
    """DBNet's initialisation (MhLiao/DB SegDetector.weights_init): Kaiming-normal convs, zero
    conv biases, BatchNorm weight 1 and bias 1e-4. Applied to decoder and head, not the backbone."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.constant_(m.bias, 1e-4)


class DBHead(nn.Module):
    """Probability and threshold branches, and the differentiable binarisation between them."""

    def __init__(self, in_channels: int, k: float = 50.0):
        """Args:
        in_channels: channels of the decoder output.
        k: amplifying factor of the binarisation (50 in the paper).
        """
        super().__init__()
        self.k = k
        self.prob = _map_branch(in_channels, PROB_PRIOR)
        self.thresh = _map_branch(in_channels, THRESH_PRIOR)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """Args:
            x: decoder output (B, in_channels, h, w).
            size: (H, W) of the input image; the maps are resized to it when the branches'
                x4 upsampling does not land on it (decoder stride != 4, or H, W not multiples of 32).

        Returns:
            Training: (B, 3, H, W) = [probability, threshold, approximate binary], all in (0, 1).
            Eval: (B, 1, H, W) probability only (the threshold branch is skipped).
            Always float32, also under autocast.
        """
        if not self.training:
            return torch.sigmoid(_to_size(self.prob(x), size))
        prob = torch.sigmoid(_to_size(self.prob(x), size))
        thresh = torch.sigmoid(_to_size(self.thresh(x), size))
        binary = torch.sigmoid(self.k * (prob - thresh))
        return torch.cat([prob, thresh, binary], dim=1)


def _to_size(logits: Tensor, size: tuple[int, int]) -> Tensor:
    # float32 even under autocast: with k = 50, half-precision P - T would quantise the binary map.
    # Logits, not probabilities, are resized so the sigmoid still bounds the result.
    # An export traces one input size and would keep this shortcut for every size: exported graphs
    # always resize (bilinear to the same size is the identity, bit for bit).
    logits = logits.float()
    if tuple(logits.shape[-2:]) == tuple(size) and not torch.compiler.is_exporting():
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class DBNet(nn.Module):
    """Backbone -> decoder -> DB head; output always has the input's H and W."""

    def __init__(self, backbone: Backbone, decoder: nn.Module, head: DBHead):
        """Args:
        backbone: four-level feature extractor.
        decoder: maps the four levels to (B, decoder.out_channels, H/s0, W/s0).
        head: DB head with in_channels == decoder.out_channels.
        """
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x: normalised images (B, 3, H, W); any H, W >= 32.

        Returns:
            Training: (B, 3, H, W) = [probability, threshold, binary]. Eval: (B, 1, H, W) probability.
        """
        return self.head(self.decoder(self.backbone(x)), x.shape[-2:])


def build_detector(model_name: str, detector: DetectorParams, pretrained: bool) -> DBNet:
    """Build DBNet from params.yaml values.

    Args:
        model_name: timm backbone name (top-level `model`).
        detector: the `detector` section (decoder, decoder_channels, backbone_weights, k).
        pretrained: top-level `pretrained`; ignored when `detector.backbone_weights` is set.

    Returns:
        The model, in training mode.
    """
    backbone = create_backbone(model_name, pretrained=pretrained, weights_path=detector.backbone_weights)
    decoder = build_decoder(detector.decoder, backbone.channels, backbone.strides, detector.decoder_channels)
    init_dbnet_weights(decoder)
    head = DBHead(decoder.out_channels, k=detector.k)
    return DBNet(backbone, decoder, head)
