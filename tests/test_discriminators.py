"""Discriminator shapes, the α mixture of Eq. 5, and the adversarial-debiasing projection."""
import pytest
import torch
import torch.nn.functional as F

from fapkit.fairness.discriminators import FairnessDiscriminator, generator_fairness_term, project_out


def _batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    prob = torch.rand(n, generator=g)
    y = torch.tensor([0, 1] * (n // 2))
    z = torch.tensor([0, 0, 1, 1] * (n // 4))
    return prob, y, z


def test_heads_have_one_hidden_layer_of_8_units_and_give_one_logit_per_sample():
    d = FairnessDiscriminator(alpha=0.5)
    assert [m.out_features for m in d.di if isinstance(m, torch.nn.Linear)] == [8, 1]
    assert len(d.deo) == 2  # D_{z|y=0}, D_{z|y=1}
    prob, y, z = _batch()
    di, deo = d.logits(prob, y)
    assert di.shape == deo.shape == (12,)


def test_deo_head_is_chosen_by_y():
    torch.manual_seed(0)
    d = FairnessDiscriminator(alpha=0.0)
    prob, y, z = _batch()
    _, deo = d.logits(prob, y)
    p = prob.reshape(-1, 1)
    expected = torch.where(y.bool(), d.deo[1](p).squeeze(1), d.deo[0](p).squeeze(1))
    assert torch.equal(deo, expected)
    assert not torch.allclose(d.deo[0](p), d.deo[1](p))  # the two heads really differ


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_alpha_mixes_di_and_deo_losses(alpha):
    torch.manual_seed(1)
    d = FairnessDiscriminator(alpha=alpha)
    prob, y, z = _batch()
    out = d.loss(prob, y, z)
    di, deo = d.logits(prob, y)
    l_di = F.binary_cross_entropy_with_logits(di, z.float())
    l_deo = F.binary_cross_entropy_with_logits(deo, z.float())
    assert torch.allclose(out["l_di"], l_di) and torch.allclose(out["l_deo"], l_deo)
    assert torch.allclose(out["l_d"], alpha * l_di + (1 - alpha) * l_deo)
    assert torch.allclose(generator_fairness_term(d, prob, y, z, "paper"), -out["l_d"])


def test_confusion_form_is_minimal_at_the_base_rate():
    d = FairnessDiscriminator(alpha=1.0)
    prob, y, z = _batch()
    with torch.no_grad():  # make the DI head output the logit of the base rate 0.5 exactly
        for m in d.di:
            if isinstance(m, torch.nn.Linear):
                m.weight.zero_()
                m.bias.zero_()
    base = generator_fairness_term(d, prob, y, z, "confusion")
    assert base.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    with torch.no_grad():
        d.di[-1].bias.fill_(3.0)  # confident "z=1" is worse than uninformed
    assert generator_fairness_term(d, prob, y, z, "confusion") > base


def test_bad_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\], got 1.5"):
        FairnessDiscriminator(alpha=1.5)


def test_projection_on_a_conv_shaped_tensor_matches_hand_computation():
    # g and h as [out=2, in=1, kh=1, kw=2] kernels: the projection treats each as one 4-vector.
    g = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(2, 1, 1, 2)
    h = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(2, 1, 1, 2)
    # <g,h> = 1 + 3 = 4, <h,h> = 2, proj = 2·h = [2,0,2,0]; with a = 0.5: g − proj − 0.5·h
    expected = torch.tensor([1 - 2 - 0.5, 2 - 0 - 0, 3 - 2 - 0.5, 4 - 0 - 0]).reshape(2, 1, 1, 2)
    out = project_out(g, h, adv_weight=0.5)
    assert torch.allclose(out, expected)
    # torch.inner contracts only the last axis; the whole-tensor product is what the method needs
    assert torch.inner(g, h).shape != torch.Size([])
    # the result (without the −a·h term) is orthogonal to h
    assert abs(float((project_out(g, h, 0.0) * h).sum())) < 1e-6


def test_projection_with_zero_adversary_gradient_leaves_gradient_alone():
    g = torch.randn(3, 3)
    assert torch.equal(project_out(g, torch.zeros(3, 3), 1.0), g)


def test_a_balanced_discriminator_weighs_every_group_alike_and_agrees_on_balanced_groups():
    torch.manual_seed(0)
    plain, balanced = FairnessDiscriminator(alpha=0.5), FairnessDiscriminator(alpha=0.5, balance=True)
    balanced.load_state_dict(plain.state_dict())
    prob = torch.rand(8)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    even = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])  # two of each group in each y cell
    a, b = plain.loss(prob, y, even), balanced.loss(prob, y, even)
    assert torch.allclose(a["l_d"], b["l_d"]) and torch.allclose(a["l_di"], b["l_di"])
    skewed = torch.tensor([0, 0, 0, 1, 0, 0, 0, 0])  # one minority sample, in the y = 0 cell
    di, deo = plain.per_sample_losses(prob, y, skewed)
    out = balanced.loss(prob, y, skewed)
    assert torch.isclose(out["l_di"], (di[skewed == 0].mean() + di[skewed == 1].mean()) / 2)
    cell0 = (deo[:3].mean() + deo[3]) / 2  # y = 0: both groups alike; y = 1: the majority alone
    assert torch.isclose(out["l_deo"], (4 * cell0 + 4 * deo[4:].mean()) / 8)
    out["l_d"].backward()  # differentiable through the group means
    assert all(p.grad is not None for p in balanced.parameters())
