import numpy as np
import pytest
import torch

from components.export import compare
from components.model.onnx_export import export_onnx
from components.inference.onnx_session import ort_session
from components.model.curves_nafnet import CurvesNAFNet
from components.model.nafnet_arch import NAFNet, use_local_pooling

ARCH = {"width": 8, "enc_blk_nums": (1, 1), "middle_blk_num": 1, "dec_blk_nums": (1, 1)}


def s_curves() -> list:
    x = np.linspace(0, 1, 256)
    return [list(x ** g) for g in (0.6, 0.8, 0.7)]


BLEND = {"kind": "blend", "curves": s_curves(), "target_quantiles": [list(np.linspace(0.05, 0.95, 65))] * 3}


@pytest.fixture(scope="module", params=["global", "tlc", "curves", "blend"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    if request.param == "curves":  # NAFNet over fitted tone curves, as global_view models train
        model = CurvesNAFNet(s_curves(), **ARCH).eval()
    elif request.param == "blend":  # over curves and histogram matching (it indexes sorted pixels)
        model = CurvesNAFNet(preset=BLEND, **ARCH).eval()
    else:
        model = NAFNet(**ARCH).eval()
    for p in model.parameters():  # make the residual branches active, not identity
        torch.nn.init.normal_(p, std=0.1) if p.dim() == 4 and p.shape[0] > 1 else None
    for name, p in model.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.fill_(0.5)
    if request.param == "tlc":  # windows smaller than the test sizes, so local pooling is exercised
        use_local_pooling(model, 24)
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(model, path, opset=18)
    return model, path


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (3, 3, 37, 90), (2, 3, 130, 17)])
def test_onnx_matches_pytorch_for_any_batch_and_size(exported, shape):
    model, path = exported
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    diffs = compare(model, path, {"x": x})
    assert diffs["x"] < 1e-4
    assert ort_session(path).run(None, {"input": x})[0].shape == shape


def test_graph_has_named_dynamic_axes(exported):
    _, path = exported
    dims = ort_session(path).get_inputs()[0].shape
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))


def test_fp16_variant_keeps_float32_io_and_stays_close(exported):
    from components.export import export_fp16

    model, path = exported
    x = np.random.default_rng(2).random((1, 3, 48, 80), dtype=np.float32)
    fp16_path, diffs = export_fp16(path, model, {"x": x})
    session = ort_session(fp16_path)
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    assert 0 < diffs["x"] < 1e-2  # half precision: not bit-exact, but close
    big = np.random.default_rng(3).random((1, 3, 288, 384), dtype=np.float32)  # more pixels than FP16's max
    out = session.run(None, {"input": big})[0]
    assert np.abs(out - model(torch.from_numpy(big)).detach().numpy()).max() < 2e-2


def test_the_served_global_view_composite_matches_pytorch(tmp_path):
    """Network at working size, then the transfer to full resolution: onnxruntime vs PyTorch."""
    from components.config import InferenceSpec
    from components.inference.modes import enhance
    from components.inference.onnx_session import ort_runner
    from components.model.model_io import torch_runner

    torch.manual_seed(1)
    model = CurvesNAFNet(s_curves(), **ARCH).eval()
    torch.nn.init.normal_(model.body.ending.weight, std=0.05)
    export_onnx(model, tmp_path / "m.onnx", opset=18)
    spec = InferenceSpec(mode="global_view", working_size=96)
    photo = (np.random.default_rng(3).random((301, 457, 3)) * 255).astype(np.uint8)
    served = enhance(photo, ort_runner(tmp_path / "m.onnx"), spec)
    reference = enhance(photo, torch_runner(model), spec)
    assert served.shape == (301, 457, 3) and np.abs(served - reference).max() < 1e-4
    assert np.abs(served - photo / 255).mean() > 0.02  # the curves changed the photo


def test_untrained_curves_model_is_exactly_its_curves():
    """The residual starts at zero: before training, the model is the tone-curve baseline."""
    from components.model.baseline import apply_tone_curves

    model = CurvesNAFNet(s_curves(), **ARCH).eval()
    levels = np.arange(256, dtype=np.float32) / 255
    x = np.stack(np.meshgrid(levels, levels[::-1], indexing="ij"), 0)[[0, 1, 0]][None]
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()[0].transpose(1, 2, 0)
    expected = apply_tone_curves(x[0].transpose(1, 2, 0), np.array(s_curves(), np.float32))
    assert np.abs(out - expected).max() < 1e-5


def test_the_onnx_names_no_absolute_path_so_every_clone_exports_the_same_bytes(exported):
    """dvc.lock records the ONNX's md5: absolute paths in the exporter's per-node stack traces
    (this clone's folder, its virtualenv) made a fresh clone's `make demo` change it."""
    import sys

    import onnx

    from components.model.onnx_export import PROJECT

    model = onnx.load(str(exported[1]))
    traces = [p.value for n in model.graph.node for p in n.metadata_props if p.key == "pkg.torch.onnx.stack_trace"]
    assert traces and any("components/model/nafnet_arch.py" in t for t in traces)  # still says where each node came from
    assert not any(str(PROJECT) in t or sys.prefix in t for t in traces)


def active_model(seed: int, preset: dict) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = CurvesNAFNet(preset=preset, **ARCH).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model


def test_a_second_model_of_one_architecture_reuses_the_trace_and_gets_its_own_weights(tmp_path):
    """A cross-validated set's fold models share an architecture: the exporter traces it once,
    and each file is what a fresh export of its own model gives, byte for byte. Another preset
    kind (a branch baked into the graph) is traced anew."""
    import time

    from components.model.onnx_export import OnnxExporter

    exporter = OnnxExporter(opset=18)
    first, second = active_model(0, BLEND), active_model(1, BLEND)
    curves = active_model(2, {**BLEND, "kind": "curves"})
    x = {"x": np.random.default_rng(3).random((2, 3, 45, 70), dtype=np.float32)}
    exporter.export(first, tmp_path / "first.onnx")
    start = time.monotonic()
    exporter.export(second, tmp_path / "second.onnx")
    reused = time.monotonic() - start
    exporter.export(curves, tmp_path / "curves.onnx")
    OnnxExporter(opset=18).export(second, tmp_path / "fresh.onnx")
    assert (tmp_path / "second.onnx").read_bytes() == (tmp_path / "fresh.onnx").read_bytes()
    assert compare(second, tmp_path / "second.onnx", x)["x"] < 1e-4
    assert compare(first, tmp_path / "second.onnx", x)["x"] > 1e-2  # not the first model's weights
    assert compare(curves, tmp_path / "curves.onnx", x)["x"] < 1e-4
    assert exporter.traced_architectures == 2
    print(f"a reused trace exported in {reused:.1f} s")


def test_a_stored_trace_serves_a_later_process_with_the_same_bytes(tmp_path, caplog):
    """Export stages and pipeline runs are processes of their own: a traces folder hands each
    architecture's graph to the next one, which does not trace it again and writes what a fresh
    trace gives, byte for byte (dvc.lock records the md5). A damaged file is traced again and
    replaced, naming the file."""
    import logging

    from components.model.onnx_export import OnnxExporter

    traces = tmp_path / "traces"
    model = active_model(0, BLEND)
    OnnxExporter(18, traces).export(model, tmp_path / "first.onnx")
    stored = list(traces.iterdir())
    assert len(stored) == 1
    later = OnnxExporter(18, traces)
    later.export(active_model(1, BLEND), tmp_path / "other-weights.onnx")
    later.export(model, tmp_path / "later.onnx")
    assert later.fresh_traces == 0
    stored[0].write_bytes(stored[0].read_bytes()[:1000])  # cut short, as a full disk or a kill leaves it
    repaired = OnnxExporter(18, traces)
    with caplog.at_level(logging.WARNING, logger="components.model.onnx_export"):
        repaired.export(model, tmp_path / "fresh.onnx")
    assert repaired.fresh_traces == 1 and str(stored[0]) in caplog.text
    first = (tmp_path / "first.onnx").read_bytes()
    assert (tmp_path / "later.onnx").read_bytes() == first == (tmp_path / "fresh.onnx").read_bytes()
    assert (tmp_path / "other-weights.onnx").read_bytes() != first
    assert OnnxExporter(18, traces)._graph(model, stored[0].stem).graph.node  # the file was replaced


def test_a_trace_is_keyed_by_what_the_graph_depends_on(monkeypatch):
    """Another opset, another layout of layers or another exporter version is another graph."""
    from components.model import onnx_export

    model = active_model(0, BLEND)
    key = onnx_export.trace_key(model, 18)
    assert key == onnx_export.trace_key(active_model(1, BLEND), 18)  # weights are not part of it
    assert key != onnx_export.trace_key(model, 17)
    assert key != onnx_export.trace_key(CurvesNAFNet(preset=BLEND, **{**ARCH, "width": 4}).eval(), 18)
    versions = onnx_export.metadata.version
    monkeypatch.setattr(onnx_export.metadata, "version", lambda p: "9.9" if p == "onnxscript" else versions(p))
    assert key != onnx_export.trace_key(model, 18)
