"""params.yaml validation: every error is one line naming the key, the value and the fix."""
from pathlib import Path

import pytest
import yaml

from doclab.config import ConfigError, Params, build, load_params, to_dict

REPO = Path(__file__).resolve().parents[1]


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        build(Params, raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_committed_params_are_valid_and_match_schema_defaults():
    params = load_params(REPO / "params.yaml")
    assert params == build(Params, {}), "schema defaults drifted from params.yaml"
    assert params.batch_size == "auto" and params.pretrained is False


def test_unknown_key_suggests_the_closest_name():
    message = error_for({"detector": {"shrink_ratoi": 0.5}})
    assert message.startswith("detector.shrink_ratoi: unknown key")
    assert "did you mean 'detector.shrink_ratio'" in message


def test_unknown_top_level_key_lists_valid_keys():
    message = error_for({"modle": "resnet18"})
    assert "modle: unknown key" in message and "'model'" in message and "image_size" in message


def test_exponent_float_written_as_string_gets_a_hint():
    message = error_for({"detector": {"k": "1e-3"}})
    assert message.startswith("detector.k: got '1e-3', expected a number")
    assert "write 1.0e-3" in message


def test_quoted_integer_is_rejected():
    assert "write it without quotes" in error_for({"image_size": "512"})


def test_out_of_range_value_names_the_bounds():
    message = error_for({"postprocess": {"box_thresh": 1.5}})
    assert message == "postprocess.box_thresh: got 1.5, expected a value in [0.0, 1.0]"


def test_choice_typo_lists_choices_and_suggests():
    message = error_for({"device": "cudaa"})
    assert "one of 'auto', 'cpu', 'cuda'" in message and "did you mean 'cuda'" in message


def test_batch_size_accepts_int_or_auto_only():
    assert build(Params, {"batch_size": 4}).batch_size == 4
    assert build(Params, {"batch_size": "auto"}).batch_size == "auto"
    assert "batch_size" in error_for({"batch_size": "big"})
    assert "batch_size" in error_for({"batch_size": 0})


def test_bool_is_not_an_int_and_int_is_a_float():
    assert "image_size" in error_for({"image_size": True})
    assert build(Params, {"detector": {"k": 50}}).detector.k == 50.0
    assert isinstance(build(Params, {"detector": {"k": 50}}).detector.k, float)


def test_cross_field_checks():
    assert "multiple of 32" in error_for({"image_size": 500})
    assert "thresh_min" in error_for({"detector": {"thresh_min": 0.8, "thresh_max": 0.7}})


def test_sources_are_validated_per_item():
    message = error_for({"data": {"source": "sources", "sources": [{"name": "a", "format": "ufo", "images": "x"}]}})
    assert message == "data.sources[0].annotations: required for format 'ufo'"
    message = error_for({"data": {"sources": [{"name": "a", "format": "coco", "images": "x"}]}})
    assert message.startswith("data.sources[0].format: got 'coco'")
    assert "data.sources: empty" in error_for({"data": {"source": "sources"}})
    dup = {"name": "a", "format": "imagefolder", "images": "x"}
    assert "duplicate source name 'a'" in error_for({"data": {"source": "sources", "sources": [dup, dup]}})


def test_pretrain_section_is_checked():
    assert "pretrain.sources: empty" in error_for({"pretrain": {"source": "sources"}})
    assert error_for({"pretrain": {"train": {"init_from": "models/detector.pt"}}}).startswith(
        "pretrain.train.init_from: got 'models/detector.pt', expected ''")
    message = error_for({"pretrain": {"source": "synthetic"}, "detector": {"train": {"init_from": "a.pt"}}})
    assert message.startswith("detector.train.init_from: got 'a.pt' while pretrain.source is 'synthetic'")
    assert error_for({"pretrain": {"synthetic": {"granularity": "char"}}}).startswith(
        "pretrain.synthetic.granularity: got 'char'")
    pretrain = build(Params, {"pretrain": {"source": "synthetic", "val": 0.2}}).pretrain
    data = pretrain.data()
    assert (data.source, data.synthetic.granularity, data.split.val, data.split.test) == ("synthetic", "line", 0.2, 0.0)


def test_section_that_is_not_a_mapping():
    assert error_for({"detector": 3}) == "detector: got 3, expected a mapping of keys"


def test_load_params_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("detector:\n  trian: 1\n")
    with pytest.raises(ConfigError, match=r"params.yaml: detector.trian: unknown key"):
        load_params(path)
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params.yaml: line \d+ is not valid YAML"):
        load_params(path)
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")


def test_exponent_floats_as_dvc_writes_them_load_as_numbers(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("detector:\n  train:\n    lr: 1e-05\n    weight_decay: 5E-4\n  k: 50\nseed: 7\n")
    params = load_params(path)
    assert params.detector.train.lr == 1e-05 and params.detector.train.weight_decay == 5e-4
    assert params.detector.k == 50.0 and params.seed == 7 and isinstance(params.seed, int)
    path.write_text("model: 1e5\n")  # a float where a name is expected is still an error, not a string
    with pytest.raises(ConfigError, match="model"):
        load_params(path)


def test_to_dict_round_trips():
    params = build(Params, {"data": {"source": "sources", "sources": [
        {"name": "r", "format": "ufo", "images": "i", "annotations": "a.json"}]}})
    plain = to_dict(params)
    assert isinstance(plain["data"]["sources"], list)
    assert build(Params, yaml.safe_load(yaml.safe_dump(plain))) == params


def test_detector_input_rule_is_checked():
    assert error_for({"detector": {"input": {"resize": "short"}}}).startswith("detector.input.resize: got 'short'")
    assert error_for({"image_size": 736, "detector": {"input": {"resize": "short_side", "max_side": 640}}}).startswith(
        "detector.input.max_side: got 640, expected at least image_size (736) with resize short_side")
    rule = build(Params, {"detector": {"input": {"resize": "short_side"}}}).detector.input
    assert (rule.resize, rule.max_side) == ("short_side", 2000)
