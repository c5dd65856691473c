"""ReDO networks: shapes, mask normalisation, composites, losses, gradients, determinism, collapse rule."""
import pytest
import torch
import torch.nn.functional as F

from models.blocks import ModelConfigError
from models.gan_blocks import PyramidPooling, SelfAttention
from models.redo import MaskNetwork, ReDO
from stages.redo.train import is_collapsed

torch.set_num_threads(1)
TINY = dict(image_size=16, z_dim=4, ch=2, nf_mask=4, n_res_mask=1)


@pytest.mark.parametrize("n", [2, 3])
def test_shapes_and_masks_sum_to_one(n):
    torch.manual_seed(0)
    m = ReDO(n_regions=n, **TINY)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    masks = m.mask_net(x)
    assert masks.shape == (3, n, 16, 16)
    torch.testing.assert_close(masks.sum(1), torch.ones(3, 16, 16))
    z = m.sample_z(3)
    drawn = m.draw_regions(masks, z)
    assert drawn.shape == (3, n, 3, 16, 16) and drawn.abs().max() <= 1
    assert m.disc(x).shape == (3,)
    assert m.z_encoder(x).shape == (3, n, 4)
    assert m.lambda_z == pytest.approx(5 / (n * 4))


def test_mask_network_keeps_128_and_pyramid_width():
    # Table 5.1 at full size: 128x128 out (the padding typo resolved), PPM 64 -> 68 channels.
    net = MaskNetwork(2, nf=8, n_res=1)
    assert net(torch.zeros(1, 3, 128, 128)).shape == (1, 2, 128, 128)
    assert PyramidPooling(64).out_channels == 68


def test_composite_keeps_input_outside_the_redrawn_region():
    x = torch.rand(2, 3, 8, 8)
    masks = torch.zeros(2, 2, 8, 8)
    masks[:, 0, :4] = 1
    masks[:, 1] = 1 - masks[:, 0]
    drawn = torch.full((2, 2, 3, 8, 8), -1.0)
    comp = ReDO.composites(x, masks, drawn)
    torch.testing.assert_close(comp[:, 0, :, 4:], x[:, :, 4:])   # region 0 redrawn: the rest is the input
    assert (comp[:, 0, :, :4] == -1).all()
    torch.testing.assert_close(comp[:, 1, :, :4], x[:, :, :4])


def test_generator_loss_reaches_every_generator_side_network_and_hinge_loss():
    torch.manual_seed(0)
    m = ReDO(n_regions=2, **TINY)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = m.generator_losses(x, m.sample_z(2))
    out["loss"].backward()
    for net in (m.mask_net, m.generators, m.z_encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    # hinge: with D's head zeroed, D = 0 everywhere and the loss is exactly 1 + 1
    torch.nn.init.zeros_(m.disc.head.weight)
    torch.nn.init.zeros_(m.disc.head.bias)
    assert float(m.discriminator_loss(x, out["fakes"])) == pytest.approx(2.0)


def test_z_error_is_summed_squared_error():
    torch.manual_seed(0)
    m = ReDO(n_regions=2, **TINY)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    z = m.sample_z(2)
    out = m.generator_losses(x, z)
    masks = m.mask_net(x)
    full = (masks.unsqueeze(2) * m.draw_regions(masks, z)).sum(1)
    expected = (m.z_encoder(full) - z).pow(2).sum(dim=(1, 2)).mean()
    torch.testing.assert_close(out["z_err"], expected.detach())
    torch.testing.assert_close(out["loss"], out["adv"] + m.lambda_z * expected, rtol=1e-5, atol=1e-5)


def test_deterministic_given_seed():
    def losses():
        torch.manual_seed(3)
        m = ReDO(n_regions=3, **TINY)
        g = torch.Generator().manual_seed(1)
        return m.generator_losses(torch.rand(2, 3, 16, 16, generator=g), m.sample_z(2, g))["loss"]
    assert float(losses()) == float(losses())


def test_supervised_loss_decreases_on_a_tiny_batch():
    torch.manual_seed(0)
    net = MaskNetwork(2, nf=4, n_res=1)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = (x[:, 0] > 0).long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.nll_loss(net.log_probs(x), y)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.8 * first


def test_self_attention_is_identity_at_init():
    x = torch.rand(1, 8, 4, 4)
    torch.testing.assert_close(SelfAttention(8)(x), x)


def test_bad_config():
    with pytest.raises(ModelConfigError):
        ReDO.from_config({"image_size": 24})
    with pytest.raises(ModelConfigError):
        ReDO.from_config({"n_region": 2})


def test_collapse_rule():
    tr = {"restart_before": 100, "collapse_threshold": 0.1}
    assert is_collapsed(0.02, 0.05, 50, tr)
    assert not is_collapsed(0.02, 0.3, 50, tr)      # both train and val must be collapsed
    assert not is_collapsed(0.02, 0.05, 150, tr)    # too late to restart
