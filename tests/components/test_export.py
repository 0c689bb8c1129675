import numpy as np
import pytest
import torch

from components.export import compare, export_onnx, ort_session
from components.nafnet_arch import NAFNet, use_local_pooling


@pytest.fixture(scope="module", params=["global", "tlc"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = NAFNet(width=8, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1)).eval()
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
