import pytest
import torch

from components.model.basicsr_adapter import register_with_basicsr
from components.model.nafnet_arch import LocalAvgPool, NAFBlock, NAFNet, use_local_pooling

TINY = dict(width=8, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1))


@pytest.mark.parametrize("h,w", [(32, 32), (37, 51), (5, 9)])
def test_output_has_the_input_size(h, w):
    net = NAFNet(**TINY).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_blocks_start_as_identity():
    # beta and gamma start at zero: each NAFBlock passes its input through unchanged.
    block = NAFBlock(8).eval()
    x = torch.rand(1, 8, 16, 16)
    assert torch.equal(block(x), x)
    assert not block.beta.any() and not block.gamma.any()


def test_encoder_depth_follows_config():
    net = NAFNet(width=16, enc_blk_nums=(1, 2, 3), middle_blk_num=4, dec_blk_nums=(1, 1, 1))
    assert [len(e) for e in net.encoders] == [1, 2, 3] and len(net.middle_blks) == 4
    assert net.padder_size == 8
    assert net.middle_blks[0].conv1.in_channels == 16 * 2**3


def test_registered_with_basicsr():
    from basicsr.archs import build_network

    register_with_basicsr()
    register_with_basicsr()  # idempotent
    net = build_network({"type": "NAFNet", **TINY})
    assert isinstance(net, NAFNet)


@pytest.mark.parametrize("width, millions", [(32, 29.16), (64, 115.98)])
def test_parameter_counts_match_the_reference_sidd_models(width, millions):
    """The paper's SIDD configuration (enc [2,2,4,8], middle 12, dec [2,2,2,2]). Reference
    figures: 29.16M for width 32 (the authors, megvii-research/NAFNet issue #60) and 115.9M
    for width 64 (the reference NAFNet_arch.py's own printout, quoted in issue #51)."""
    net = NAFNet(width=width, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2))
    assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(millions, abs=0.01)


def _window_mean_by_loops(x: torch.Tensor, k: int) -> torch.Tensor:
    """The definition: each pixel's k x k window, pushed inside the image at the borders."""
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            top, left = min(max(i - k // 2, 0), max(h - k, 0)), min(max(j - k // 2, 0), max(w - k, 0))
            out[..., i, j] = x[..., top:top + k, left:left + k].mean((-2, -1))
    return out


@pytest.mark.parametrize("k", [1, 4, 9])
def test_local_pooling_is_the_window_mean(k):
    x = torch.rand(2, 3, 13, 21, dtype=torch.float64)
    assert torch.allclose(LocalAvgPool(k)(x), _window_mean_by_loops(x, k))


def test_a_window_larger_than_the_image_is_global_pooling():
    x = torch.rand(1, 4, 10, 30)
    assert torch.allclose(LocalAvgPool(64)(x), x.mean((2, 3), keepdim=True).expand_as(x), atol=1e-6)


def _active(net: NAFNet) -> NAFNet:
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return net.eval()


def test_tlc_changes_nothing_at_training_size():
    plain = _active(NAFNet(**TINY))
    tlc = use_local_pooling(_active(NAFNet(**TINY)), 48)
    assert [type(b.sca[0]).__name__ for b in tlc.encoders[1]] == ["LocalAvgPool"]
    assert tlc.encoders[0][0].sca[0].window == 48 and tlc.middle_blks[0].sca[0].window == 12
    with torch.no_grad():
        patch = torch.rand(1, 3, 32, 32)  # a training patch fits the window: same statistics
        assert torch.allclose(plain(patch), tlc(patch), atol=1e-5)
    # on a larger input each block's attention sees its own neighbourhood's statistics
    block = tlc.encoders[0][0]
    features = torch.cat([torch.zeros(1, 8, 64, 64), torch.ones(1, 8, 64, 64)], dim=3)
    pooled = block.sca[0](features)
    assert pooled[..., 0].max() == 0 and pooled[..., -1].min() == 1
