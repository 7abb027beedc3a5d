"""timm document-type classifiers: creation (offline-safe pretrained weights), freezing for fine-tuning,
and the models/classifier/<member>.pt file.

    model = build_classifier("resnet18", num_classes=6, pretrained=False)
    freeze_backbone(model)             # head-only epochs
    unfreeze(model, last_stages=2)     # then the last two feature stages + head (0 = everything)
    model, info = load_classifier("models/classifier/resnet18.pt")
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from doclab.classification.no_data import refuse_marker
from doclab.config import ClassifierParams, ConfigError
from doclab.engine.checkpoint import load_matching, load_weights, read_model_file
from doclab.engine.optim import Schedule
from doclab.engine.timm_models import create_model

KIND = "classifier"
WEIGHT_KEYS = ("state_dict", "sub_members")


def build_classifier(name: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    """A timm classifier with a fresh `num_classes`-way head.

    Args:
        name: timm model name (e.g. 'resnet18', 'efficientnet_b0').
        num_classes: C, outputs of the head.
        pretrained: ImageNet weights from the Hugging Face hub (or its local cache); the head is
            always newly initialised.
    Returns:
        The model: forward takes (B, 3, S, S) normalised images and gives (B, C) logits.
    Raises:
        ConfigError: unknown timm model name (with the closest names), or pretrained weights that are
            neither downloadable nor cached, or do not exist.
    """
    return create_model(name, "classifier.members", "classifier.pretrained", pretrained, num_classes=num_classes)


def freeze_backbone(model: nn.Module) -> None:
    """Train the head only: every parameter except those of timm's `get_classifier()` stops learning.

    The frozen part is put in eval mode so its BatchNorm statistics stay as they are; call this
    after `model.train()` (the loop's epoch hook does).
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    for param in model.parameters():
        param.requires_grad = id(param) in head
    _keep_frozen_statistics(model)


def _keep_frozen_statistics(model: nn.Module) -> None:
    """Put layers whose own parameters are all frozen in eval mode (BatchNorm keeps its running statistics).

    Only the layer itself: `eval()` would recurse into children (timm's BatchNormAct2d holds its activation).
    """
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            module.training = False


def unfreeze(model: nn.Module, last_stages: int = 0) -> None:
    """Make all, or only the last `last_stages` feature stages plus everything after them, trainable.

    Stages are timm's `feature_info` levels: stage i is every module registered after level i-1's
    module (and its children) up to the end of level i's module; the layers after the last level
    (e.g. `conv_head`, the classifier) always train.

    Args:
        model: a timm classifier.
        last_stages: 0 = the whole model; N = the last N stages (the whole model when N covers all).
    Raises:
        ConfigError: N > 0 for a model without `feature_info`.
    """
    if last_stages == 0:
        model.requires_grad_(True)
        return
    ends = stage_ends(model)
    if last_stages >= len(ends):
        model.requires_grad_(True)
        return
    boundary = ends[len(ends) - last_stages - 1]
    position = {name: index for index, (name, _) in enumerate(model.named_modules())}
    for name, param in model.named_parameters():
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        param.requires_grad = position[owner] > boundary
    _keep_frozen_statistics(model)


def stage_ends(model: nn.Module) -> list[int]:
    """Position (in `named_modules()` order) of the last module of each feature stage.

    Args:
        model: a timm model with `feature_info` (a list of dicts with 'module').
    Returns:
        One position per stage, increasing.
    Raises:
        ConfigError: the model has no feature_info.
    """
    info = getattr(model, "feature_info", None)
    if not info:
        raise ConfigError(f"classifier.unfreeze_blocks: {type(model).__name__} has no timm feature_info stages; "
                          "use 0 (unfreeze everything)")
    names = [name for name, _ in model.named_modules()]
    ends = []
    for level in info:
        prefix = level["module"]
        inside = [i for i, name in enumerate(names) if name == prefix or name.startswith(prefix + ".")]
        ends.append(max(inside))
    return ends


def set_trainable(model: nn.Module, settings: ClassifierParams, epoch: int) -> None:
    """What trains in 0-based `epoch`: the head only before `freeze_epochs`, then `unfreeze_blocks` stages (0: all)."""
    if epoch < settings.freeze_epochs:
        freeze_backbone(model)
    else:
        unfreeze(model, settings.unfreeze_blocks)



class FineTuneSchedule(Schedule):
    """`lr_head` for the head-only steps, then the configured schedule (warm-up included) over the rest.

    Args:
        optimizer: built with the unfrozen learning rate (`classifier.train.lr`).
        name: `classifier.train.scheduler`.
        head_steps: optimizer steps of the head-only epochs (0: a plain `Schedule`).
        head_lr: `classifier.lr_head`.
        tuned_steps: optimizer steps after unfreezing.
        steps_per_epoch: optimizer steps per epoch.
        warmup_steps: warm-up length at the start of the unfrozen part.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, head_steps: int, head_lr: float,
                 tuned_steps: int, steps_per_epoch: int, warmup_steps: int):
        super().__init__(optimizer, name, tuned_steps, steps_per_epoch, warmup_steps, mode="max")
        if head_steps > 0:
            factor = head_lr / optimizer.param_groups[0]["initial_lr"]
            head = lr_scheduler.LambdaLR(optimizer, lambda _: factor)
            self.scheduler = lr_scheduler.SequentialLR(optimizer, [head, self.scheduler], milestones=[head_steps])



def read_classifier_file(path: str | Path) -> dict[str, Any]:
    """The dict stored in a models/classifier/<member>.pt (loaded with weights_only=True).

    Keys: format, name (the member = timm model name), classes, image_size, state_dict (the
    member's main weights), params (`classifier` + seed), metrics, and `sub_members`
    ([{name, fold, state_dict}], the models behind the logits file) when there is more than one.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not weights-only, or not a classifier file.
        DataError: the "no classification data" marker (see `no_data`).
    """
    saved = read_model_file(path, KIND)
    refuse_marker(saved, path)
    return saved


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained member from models/classifier/<member>.pt.

    Args:
        path: a file written by `train_classifier`.
        device: where the model goes.
    Returns:
        (model in eval mode: (B, 3, S, S) normalised images -> (B, C) logits, the file's other
        entries without the weights: name, classes, image_size, params, metrics).
    Raises:
        FileNotFoundError, CheckpointError: see `read_classifier_file`.
    """
    saved = read_classifier_file(path)
    model = build_classifier(saved["name"], len(saved["classes"]), pretrained=False)
    load_weights(model, saved["state_dict"], path, saved["name"])
    return model.to(device).eval(), {key: value for key, value in saved.items() if key not in WEIGHT_KEYS}


def init_from_classifier(model: nn.Module, path: str | Path, verbose: bool = True) -> list[str]:
    """Copy every tensor of an earlier classifier file whose name and shape match (`classifier.train.init_from`).

    Args:
        model: the freshly built classifier.
        path: a models/classifier/<member>.pt.
        verbose: print what was loaded and what kept its fresh initialisation.
    Returns:
        Names of `model`'s tensors that were not loaded (e.g. a head with another class count).
    Raises:
        FileNotFoundError, CheckpointError: see `read_classifier_file`.
    """
    return load_matching(model, read_classifier_file(path)["state_dict"], path, verbose)
