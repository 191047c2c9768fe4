"""The model registry: bundled entries, operators' own ONNX embedders (checked before anything
loads), and the refusal to compare templates of different models, in the live pipeline too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openlfr.errors import InputError, ModelError
from openlfr.face.registry import ARCFACE5, DLIB_RESNET_ID, DLIB5, builtin, registry
from openlfr.face.user_models import load_user_models


def _tiny_embedder(path: Path, size: int = 112, dim: int = 8, channels: int = 3) -> str:
    """A small real ONNX embedder: global average pool, then a fixed projection to ``dim``."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((channels, dim)).astype(np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", dim])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _models_file(tmp_path: Path, **spec: object) -> str:
    doc = {"embedders": [{"name": "tiny", "path": "tiny.onnx", "input_size": 112, "landmarks": ARCFACE5,
                          "dim": 8, "threshold": 0.5, "mean": 127.5, "std": 127.5} | spec]}
    path = tmp_path / "models.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_bundled_entries_and_their_ids() -> None:
    reg = builtin()
    assert set(reg.embedders) >= {"dlib-resnet", "sface"} and set(reg.detectors) >= {"mmod", "hog", "yunet"}
    assert reg.embedder("dlib-resnet").model_id == DLIB_RESNET_ID  # the id old stores were migrated to
    assert reg.embedder("dlib-resnet").landmarks == DLIB5 and reg.detector("yunet").landmarks == ARCFACE5
    with pytest.raises(InputError, match="unknown face model 'nope'"):
        reg.embedder("nope")


def test_an_operators_onnx_embedder_is_registered_and_runs(tmp_path: Path) -> None:
    digest = _tiny_embedder(tmp_path / "tiny.onnx")
    reg = builtin()
    assert load_user_models(reg, _models_file(tmp_path, sha256=digest)) == ["tiny"]
    entry = reg.embedder("tiny")
    assert entry.model_id == f"tiny:{digest[:8]}" and entry.dim == 8
    emb = entry.factory("cpu").embed(np.full((3, 112, 112, 3), 200, np.uint8))
    assert emb.shape == (3, 8) and np.isfinite(emb).all()


@pytest.mark.parametrize("case, match", [
    ("missing", "not found"), ("digest", "has SHA-256"), ("not-onnx", "is not an ONNX model"),
    ("shape", "input shape"), ("dim", "output has 8 values"), ("scheme", "dlib5 chips are 150x150"),
])
def test_a_bad_registered_model_is_one_clear_error_and_nothing_loads(tmp_path: Path, case: str, match: str) -> None:
    digest = _tiny_embedder(tmp_path / "tiny.onnx", size=96 if case == "shape" else 112)
    spec: dict[str, object] = {"sha256": digest}
    if case == "missing":
        spec["path"] = "absent.onnx"
    elif case == "digest":
        spec["sha256"] = "0" * 64
    elif case == "not-onnx":
        (tmp_path / "junk.onnx").write_bytes(b"this is not a model")
        spec |= {"path": "junk.onnx", "sha256": hashlib.sha256(b"this is not a model").hexdigest()}
    elif case == "dim":
        spec["dim"] = 512
    elif case == "scheme":
        spec["landmarks"] = DLIB5
    reg = builtin()
    before = dict(reg.embedders)
    with pytest.raises(ModelError, match=match):
        load_user_models(reg, _models_file(tmp_path, **spec))
    assert reg.embedders == before


def test_the_models_file_is_read_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_MODELS_FILE", _models_file(tmp_path, sha256="0" * 64))
    registry.cache_clear()
    try:
        with pytest.raises(ModelError, match="has SHA-256|not found"):
            registry()
    finally:
        monkeypatch.delenv("OPENLFR_MODELS_FILE")
        registry.cache_clear()


def test_sface_needs_a_detector_that_gives_its_points() -> None:
    from openlfr.face.analyzer import build_stage

    with pytest.raises(InputError, match="ArcFace's 5 points"):
        build_stage(detector="mmod", model="sface")


def test_the_pipeline_refuses_a_watchlist_of_another_model(tmp_path: Path) -> None:
    """A deployment frozen with one model's templates is never matched with another's probes."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "governance"))
    from govkit import FAKE_MODEL, KEY, Clock, Estate, fake_template

    from openlfr.governance import Governance, Policy
    from openlfr.pipeline.camera import CameraPipeline

    clock = Clock()
    gov = Governance(f"sqlite:///{tmp_path / 'db.sqlite'}", blob_root=tmp_path / "blobs", key=KEY, policy=Policy(),
                     template_fn=fake_template, clock=clock)
    try:
        estate = Estate(gov, clock)
        estate.setup_users()
        dep, cam, _ = estate.live_deployment()
        with pytest.raises(ModelError, match=f"made by face model '{FAKE_MODEL}'"):
            CameraPipeline(gov, dep, cam).start()
    finally:
        gov.close()


def test_an_operators_yunet_format_detector_is_registered_checked_and_used(tmp_path: Path, data_dir: Path) -> None:
    import shutil

    from openlfr.face.analyzer import FaceAnalyzer, build_stage
    from openlfr.face.image import load_image
    from openlfr.face.zoo_files import yunet_path

    shutil.copyfile(yunet_path(), tmp_path / "my-yunet.onnx")  # a model file, not face data
    digest = hashlib.sha256((tmp_path / "my-yunet.onnx").read_bytes()).hexdigest()
    doc = tmp_path / "models.json"
    doc.write_text(json.dumps({"detectors": [{"name": "my-yunet", "path": "my-yunet.onnx", "sha256": digest}]}))
    reg = builtin()
    assert load_user_models(reg, str(doc)) == ["my-yunet"] and reg.detector("my-yunet").landmarks == ARCFACE5
    bad = builtin()
    doc.write_text(json.dumps({"detectors": [{"name": "my-yunet", "path": "my-yunet.onnx", "sha256": "1" * 64}]}))
    with pytest.raises(ModelError):
        load_user_models(bad, str(doc))
    assert "my-yunet" not in bad.detectors
    registry.cache_clear()
    registry().detectors["my-yunet"] = reg.detector("my-yunet")
    try:
        faces = FaceAnalyzer(build_stage(detector="my-yunet", model="sface")).analyze(
            load_image(data_dir / "misc" / "two_people.jpg"))
        assert len(faces) == 2 and all(f.model_id.startswith("sface") for f in faces)
    finally:
        registry.cache_clear()


def test_user_embedder_on_the_pytorch_path_matches_onnx_runtime(tmp_path: Path) -> None:
    """An operator's model runs on the GPU path's executor (here on the CPU) with the same output."""
    pytest.importorskip("torch", reason="PyTorch is not installed: the GPU path's check on the CPU needs it")
    from openlfr.errors import ModelError
    from openlfr.face.onnx_runtime import make_session
    from openlfr.face.torch_graph import TorchGraph

    path = tmp_path / "tiny.onnx"
    _tiny_embedder(path)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 3, 112, 112)).astype(np.float32)
    want = make_session(path).run(["y"], {"x": x})[0]
    got = TorchGraph(path, device="cpu").run(["y"], {"x": x})[0]
    assert got.shape == (4, 8) and np.abs(got - want).max() < 1e-4
    # an operator the executor does not know is refused at load, by name
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    with pytest.raises(ModelError, match="does not implement Erf"):
        TorchGraph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), device="cpu")
