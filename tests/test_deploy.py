"""The torch-free deployment runtime: its pre-processing equals the training transforms pixel for pixel,
its manifest is validated, and an exported ONNX model matches torch at every input size."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.special
import torch

from doclab.classification.data import apply_view
from doclab.classification.data import build_eval_transform as classifier_transform
from doclab.classification.ensemble.apply import StackingModel, stacking_probs
from doclab.config import InputParams, Params
from doclab.data.records import DataError
from doclab.deploy.manifest import DeployManifest, DetectorSpec, manifest_json, read_manifest
from doclab.deploy.preprocess import input_batch, tta_view
from doclab.deploy.runtime import open_session
from doclab.detection.augment import apply_transform
from doclab.detection.augment import build_eval_transform as detector_transform
from doclab.detection.dataset import pad_images
from doclab.detection.model import build_detector
from doclab.engine.loading import normalise
from doclab.engine.onnx_export import onnx_bytes
from doclab.pipeline.export import classifier_input, detector_input

SIZES = [(300, 200), (200, 300), (128, 128), (37, 511), (1000, 999), (64, 96), (5, 3)]


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


def test_detector_input_equals_the_detector_eval_transform_bit_for_bit():
    images = _images()
    batch, scales = input_batch(images, detector_input(128, InputParams()))
    transform = detector_transform(128)
    for index, image in enumerate(images):
        expected = normalise(apply_transform(transform, image, [], [])[0]).numpy()
        assert np.array_equal(batch[index], expected), SIZES[index]
        assert scales[index] == pytest.approx(128 / max(image.shape[:2]))


def test_short_side_input_equals_the_short_side_eval_transform_padded_to_the_batch():
    rule = InputParams(resize="short_side", max_side=400)
    images = _images(4)
    batch, scales = input_batch(images, detector_input(128, rule))
    transform = detector_transform(128, rule)
    expected = pad_images([normalise(apply_transform(transform, image, [], [])[0]) for image in images]).numpy()
    # the tallest input is (5, 3) at 128 / 3: 213 -> 224 rows; the widest (37, 511), capped at 400 -> 416 columns
    assert batch.shape[2:] == (224, 416)
    assert np.array_equal(batch, expected)
    for (height, width), scale in zip(SIZES, scales):
        assert scale == pytest.approx(min(128 / min(height, width), 400 / max(height, width)))
        assert min(round(height * scale), round(width * scale)) == 128 or max(round(height * scale),
                                                                             round(width * scale)) == 400


def test_classifier_input_equals_the_classifier_eval_transform_bit_for_bit():
    images = _images(1)
    batch, _ = input_batch(images, classifier_input(64))
    transform = classifier_transform(64)
    for index, image in enumerate(images):
        assert np.array_equal(batch[index], normalise(transform(image=image)["image"]).numpy()), SIZES[index]


@pytest.mark.parametrize("view", ["identity", "hflip", "vflip", "rot90", "rot180", "rot270"])
def test_tta_views_equal_the_torch_views(view):
    batch = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert np.array_equal(tta_view(batch, view), apply_view(torch.from_numpy(batch), view).numpy())


def test_stacking_without_scipy_equals_scipy_log_softmax():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=(2, 9))
    model = StackingModel(rng.standard_normal((3, 8)), rng.standard_normal(3), np.array([0, 1, 3]))
    scores = np.log(np.maximum(probs, 1e-7)).transpose(1, 0, 2).reshape(9, -1) @ model.coef.T + model.intercept
    expected = np.zeros((9, 4))
    expected[:, model.labels] = np.exp(scipy.special.log_softmax(scores, axis=1))
    np.testing.assert_allclose(stacking_probs(model, probs), expected, rtol=0, atol=1e-15)


def _manifest() -> DeployManifest:
    return DeployManifest(DetectorSpec("detector.onnx", detector_input(128, InputParams()), Params().postprocess), None)


def test_manifest_round_trips_and_names_what_is_wrong(tmp_path):
    path = tmp_path / "deploy.json"
    path.write_text(json.dumps(manifest_json(_manifest())))
    assert read_manifest(path) == _manifest()
    short = DeployManifest(DetectorSpec("detector.onnx", detector_input(736, InputParams("short_side", 2000)),
                                        Params().postprocess), None)
    path.write_text(json.dumps(manifest_json(short)))
    assert read_manifest(path) == short and read_manifest(path).detector.input.max_side == 2000
    raw = manifest_json(_manifest())
    older = json.loads(json.dumps(raw))  # written before the input rule existed: the long-side rule
    for key in ("resize", "max_side"):
        older["detector"]["input"].pop(key)
    path.write_text(json.dumps(older))
    assert read_manifest(path) == _manifest()
    for change, message in [
        (lambda m: m.update(format="other"), "not a doclab deploy manifest (format 'other'"),
        (lambda m: m["detector"]["input"].update(pad="middle"), "detector.input: got size 128"),
        (lambda m: m["detector"]["input"].pop("mean"), "detector.input: malformed input spec (KeyError"),
        (lambda m: m["detector"]["input"].update(resize="short_side"), "expected resize in ('long_side', 'short_side') "
                                                                       "and max_side >= 1 with short_side"),
        (lambda m: m["detector"]["postprocess"].update(thresh=7), "thresh"),
        (lambda m: m.pop("detector"), "missing or wrong key 'detector'"),
    ]:
        broken = json.loads(json.dumps(raw))
        change(broken)
        path.write_text(json.dumps(broken))
        with pytest.raises(DataError) as error:
            read_manifest(path)
        assert str(error.value).startswith(str(path)) and message in str(error.value)
        assert "\n" not in str(error.value)


def test_a_file_that_is_no_onnx_model_is_one_line_naming_it(tmp_path):
    path = tmp_path / "detector.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(DataError, match=r"detector.onnx: not a loadable ONNX model"):
        open_session(path)
    with pytest.raises(DataError, match=r"missing.onnx: ONNX model not found"):
        open_session(tmp_path / "missing.onnx")


def test_exported_detector_matches_torch_at_other_batch_sizes_and_input_sizes(tmp_path):
    params = Params()
    torch.manual_seed(0)
    model = build_detector(params.model, params.detector, pretrained=False).eval()
    path = tmp_path / "detector.onnx"
    path.write_bytes(onnx_bytes(model, torch.zeros(2, 3, 128, 128), "images", "probs"))
    session = open_session(path, "cpu")
    for shape in [(1, 3, 128, 128), (3, 3, 96, 160), (1, 3, 100, 70)]:  # the last is no multiple of 32
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        found = session.run(None, {"images": x.numpy()})[0]
        assert found.shape == expected.shape == (shape[0], 1, *shape[2:])
        assert np.abs(found - expected).max() < 1e-4
