"""Lovász-softmax loss (perception3d/models/losses/lovasz.py) against its defining properties: 1 - IoU on hard
predictions, a direct loop over the Lovász extension of the Jaccard loss, ignored points, finite gradients."""
import pytest
import torch

from perception3d.models.losses.lovasz import LovaszLoss, lovasz_softmax_flat


def loop_one_minus_iou(pred, labels, C):
    """Mean over the classes present in labels of 1 - |pred = c and label = c| / |pred = c or label = c|."""
    losses = []
    for c in range(C):
        if not any(int(y) == c for y in labels):
            continue
        inter = sum(1 for p, y in zip(pred, labels) if int(p) == c and int(y) == c)
        union = sum(1 for p, y in zip(pred, labels) if int(p) == c or int(y) == c)
        losses.append(1.0 - inter / union)
    return sum(losses) / len(losses)


def direct_lovasz(probas, labels):
    """The Lovász extension of Δ_c(S) = |S| / |G_c ∪ S| evaluated at the errors m = |[y = c] - p_c| by its
    definition: sort m decreasing, sum m_i (Δ(first i points) - Δ(first i - 1 points)); mean over present classes."""
    P, C = probas.shape
    losses = []
    for c in range(C):
        G = {i for i in range(P) if int(labels[i]) == c}
        if not G:
            continue
        m = [abs((1.0 if i in G else 0.0) - float(probas[i, c])) for i in range(P)]
        order = sorted(range(P), key=lambda i: -m[i])
        total, prev, S = 0.0, 0.0, set()
        for i in order:
            S.add(i)
            delta = len(S) / len(G | S)
            total += m[i] * (delta - prev)
            prev = delta
        losses.append(total)
    return sum(losses) / len(losses)


def test_hard_predictions_give_one_minus_iou_over_present_classes():
    g = torch.Generator().manual_seed(0)
    C, P = 5, 80
    labels = torch.randint(0, 4, (P,), generator=g)  # class 4 absent from the labels...
    pred = torch.randint(0, 5, (P,), generator=g)  # ...but predicted: not averaged with classes="present"
    assert (pred == 4).any() and not (labels == 4).any()
    expected = loop_one_minus_iou(pred, labels, C)
    probas = torch.nn.functional.one_hot(pred, C).double()
    assert lovasz_softmax_flat(probas, labels).item() == pytest.approx(expected, abs=1e-12)
    # through the module, on logits whose softmax is one-hot to float32 precision
    logits = 100.0 * torch.nn.functional.one_hot(pred, C).float()
    assert LovaszLoss()(logits, labels).item() == pytest.approx(expected, abs=1e-6)
    # classes="all": the absent, predicted class counts as IoU 0
    assert lovasz_softmax_flat(probas, labels, classes="all").item() == pytest.approx((4 * expected + 1) / 5)


def test_equals_a_direct_computation_of_the_lovasz_extension():
    g = torch.Generator().manual_seed(1)
    for P, C in ((12, 3), (30, 4)):
        probas = torch.softmax(torch.randn(P, C, generator=g, dtype=torch.float64), dim=1)
        labels = torch.randint(0, C, (P,), generator=g)
        assert lovasz_softmax_flat(probas, labels).item() == pytest.approx(direct_lovasz(probas, labels), abs=1e-9)


def test_gradient_is_finite_also_with_ties():
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 6, (200,), generator=g)
    for logits in (torch.randn(200, 6, generator=g), torch.zeros(200, 6)):  # zeros: every error tied
        logits = logits.clone().requires_grad_(True)
        loss = LovaszLoss()(logits, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_ignored_points_are_left_out():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(100, 4, generator=g)
    target = torch.randint(0, 4, (100,), generator=g)
    target[::3] = -1
    loss_fn = LovaszLoss()
    base = loss_fn(logits, target)
    valid = target != -1
    torch.testing.assert_close(base, loss_fn(logits[valid], target[valid]))
    changed = logits.clone()
    changed[~valid] = 10 * torch.randn(int((~valid).sum()), 4, generator=g)
    changed.requires_grad_(True)
    loss = loss_fn(changed, target)
    torch.testing.assert_close(loss, base)
    loss.backward()
    assert torch.all(changed.grad[~valid] == 0) and changed.grad[valid].abs().sum() > 0
    # another ignore value
    target255 = torch.where(valid, target, torch.full_like(target, 255))
    torch.testing.assert_close(loss_fn(logits, target255, ignore_index=255), base)
    # everything ignored: 0, and backward still works
    none = logits.clone().requires_grad_(True)
    zero = loss_fn(none, torch.full((100,), -1))
    zero.backward()
    assert zero.item() == 0 and torch.all(none.grad == 0)


def test_bad_targets_and_registration():
    from perception3d.registry import MODELS

    assert MODELS.module_dict["LovaszLoss"] is LovaszLoss
    with pytest.raises(ValueError, match="targets"):
        LovaszLoss()(torch.randn(5, 3), torch.tensor([0, 1, 2, 3, -1]))
    with pytest.raises(ValueError, match="logits"):
        LovaszLoss()(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))
