"""Params profiles (doclab.experiments.profile, `doclab profile`): the -S arguments DVC's own Hydra parser
applies give exactly the params the profile means, and bad profiles are one line naming the key."""
import shutil
import sys

import pytest
from dvc.utils.hydra import apply_overrides

from doclab.cli import main
from doclab.config import ConfigError, build, read_yaml
from doclab.config.schema import Params
from doclab.experiments.profile import apply_profile, read_profile, set_arguments
from dvc_repo import REPO


def _applied_by_dvc(tmp_path, arguments):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    apply_overrides(params, arguments[1::2])  # what `dvc exp run -S ...` does to params.yaml
    return read_yaml(params.read_text())


def test_receipts_profile_through_dvcs_parser_gives_the_profiles_params(tmp_path):
    profile = read_profile(REPO / "profiles/receipts.yaml")
    expected = apply_profile(read_yaml((REPO / "params.yaml").read_text()), profile)
    arguments = set_arguments(profile)
    assert arguments[0::2] == ["-S"] * len(profile)
    assert _applied_by_dvc(tmp_path, arguments) == expected
    params = build(Params, expected)
    assert params.data.sources[0].images == "../shared/data/sroie_trainval/images" and params.image_size == 736
    assert params.detector.input.resize == "short_side" and params.tune.space.box_unclip_ratio[0] == 0.9


def test_awkward_values_survive_the_round_trip(tmp_path):
    profile = {"data.sources": [{"name": "odd", "format": "ufo", "images": "data/raw/it's here",
                                 "annotations": "data/raw/a b.json"}],
               "data.source": "sources", "detector.train.lr": 1.0e-4, "tune.space.polygon": [False, True],
               "classifier.members": ["resnet18", "efficientnet_b0"]}
    expected = apply_profile(read_yaml((REPO / "params.yaml").read_text()), profile)
    assert _applied_by_dvc(tmp_path, set_arguments(profile)) == expected


def test_a_value_given_by_hand_wins():
    arguments = set_arguments({"image_size": 768, "seed": 1}, ["dvc", "exp", "run", "-S", "image_size=1024"])
    assert arguments == ["-S", "seed=1"]


@pytest.mark.parametrize("text, message", [
    ("image_size: 500\n", "receipts.yaml: image_size: got 500, expected a multiple of 32"),
    ("detector.trian.epochs: 3\n", "receipts.yaml: detector.trian.epochs: detector.trian is not a section"),
    ("- a\n", "receipts.yaml: expected a mapping of dotted params keys"),
])
def test_bad_profiles_are_one_line_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "receipts.yaml"
    path.write_text(text)
    assert main(["profile", str(path), "--params", str(REPO / "params.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_the_command_runs_with_the_arguments_appended(tmp_path, capfd):
    path = tmp_path / "p.yaml"
    path.write_text("seed: 7\nimage_size: 640\n")
    command = [sys.executable, "-c", "import sys; print(sys.argv[1:])", "-S", "seed=3"]
    assert main(["profile", "--params", str(REPO / "params.yaml"), str(path), *command]) == 0
    assert capfd.readouterr().out.strip() == "['-S', 'seed=3', '-S', 'image_size=640']"
    with pytest.raises(ConfigError):
        apply_profile({"seed": 1}, {"seed": -1})
