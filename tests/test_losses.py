import math

import pytest
import torch

from tsimcne_widgets.losses import cauchy_infonce, cosine_infonce, get_loss


def naive_loss(z, sim):
    """O(B^2) reference straight from the definition, in float64."""
    z = z.double()
    n = z.shape[0]
    b = n // 2
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        num = sim(z[i], z[j])
        den = sum(sim(z[i], z[k]) for k in range(n) if k != i)
        total += -math.log(num / den)
    return total / n


def cauchy(a, b):
    return float(1.0 / (1.0 + ((a - b) ** 2).sum()))


def cos_sim(tau):
    def f(a, b):
        return math.exp(float(torch.nn.functional.cosine_similarity(a, b, dim=0)) / tau)
    return f


@pytest.mark.parametrize("b,d", [(2, 2), (8, 2), (16, 128)])
def test_cauchy_matches_naive(b, d):
    g = torch.Generator().manual_seed(b * 100 + d)
    z = torch.randn(2 * b, d, generator=g) * 3
    assert float(cauchy_infonce(z)) == pytest.approx(naive_loss(z, cauchy), rel=1e-5)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_cosine_matches_naive(tau):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(24, 16, generator=g)
    assert float(cosine_infonce(z, tau)) == pytest.approx(naive_loss(z, cos_sim(tau)), rel=1e-5)


def test_cauchy_is_stable_for_far_points_and_low_precision():
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(0)) * 1e4
    loss = cauchy_infonce(z.bfloat16())
    assert torch.isfinite(loss)
    # Identical positives, everything else far away: the loss tends to its minimum 0.
    a = torch.arange(8.0)[:, None].repeat(1, 2) * 1e3
    assert float(cauchy_infonce(torch.cat([a, a]))) < 1e-3


def test_loss_decreases_when_positives_move_together():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 2, generator=g) * 5
    far = torch.cat([a, a + 3.0])
    near = torch.cat([a, a + 0.1])
    assert float(cauchy_infonce(near)) < float(cauchy_infonce(far))


def test_gradients_flow():
    z = torch.randn(16, 4, requires_grad=True)
    cauchy_infonce(z).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_get_loss():
    assert get_loss("euclidean") is cauchy_infonce
    z = torch.randn(8, 3)
    assert float(get_loss("cosine", 0.2)(z)) == pytest.approx(float(cosine_infonce(z, 0.2)))
    with pytest.raises(ValueError, match="metric must be 'euclidean' or 'cosine'"):
        get_loss("manhattan")


def heavy(dof):
    def f(a, b):
        return float((1.0 + ((a - b) ** 2).sum() / dof) ** -dof)
    return f


@pytest.mark.parametrize("dof", [0.5, 2.0])
def test_heavy_tailed_kernel_matches_naive(dof):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(16, 2, generator=g) * 3
    assert float(cauchy_infonce(z, dof=dof)) == pytest.approx(naive_loss(z, heavy(dof)),
                                                              rel=1e-5)
    # Partial losses over disjoint anchors still add up to the full loss.
    rows = torch.arange(16)
    parts = cauchy_infonce(z, rows[:5], dof=dof) + cauchy_infonce(z, rows[5:], dof=dof)
    assert float(parts) == pytest.approx(float(cauchy_infonce(z, dof=dof)), rel=1e-5)


def test_dof_one_is_the_cauchy_kernel_and_cosine_has_none():
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(cauchy_infonce(z, dof=1.0), cauchy_infonce(z))
    assert float(cauchy_infonce(z, dof=0.5)) != pytest.approx(float(cauchy_infonce(z)))
    cos = get_loss("cosine")
    assert torch.equal(cos(z, dof=1.0), cos(z))
    with pytest.raises(ValueError, match="cosine loss has no kernel"):
        cos(z, dof=0.5)
