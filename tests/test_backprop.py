"""dlgm.backprop against its oracle: autograd's gradients stepped by torch.optim.SGD, on the DBN's
and the DBM's classifiers, with momentum, weight decay, a top-layer-only phase and a fresh buffer."""
import copy

import pytest
import torch
import torch.nn.functional as F

from dlgm import backprop
from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.dbm_finetune import DBMClassifier
from dlgm.dbn.finetune import DeepClassifier


def _autograd_step(net, opt, forward, labels, trainable):
    for p in net.parameters():
        p.requires_grad_(any(p is q for q in trainable))
    loss = F.cross_entropy(forward(), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    net.requires_grad_(True)
    return loss.detach()


def _compare(net, graph_of, forward_of, x, labels, schedule, rows=None):
    """Run ``schedule`` [(momentum, weight decay, train_from)] with both steps from the same start."""
    ours, ref = net, copy.deepcopy(net)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.3, momentum=0.9, foreach=True)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9, foreach=True)
    n_layers = len(graph_of(ref))
    for momentum, decay, train_from in schedule:
        for opt in (opt_ours, opt_ref):
            opt.param_groups[0].update(momentum=momentum, weight_decay=decay)
        loss, _ = backprop.sgd_step(graph_of(ours), opt_ours, x, labels, rows=rows, train_from=train_from)
        trainable = [p for layer in graph_of(ref)[train_from - 1:] for p in
                     (layer.bias, *[t.weight for t in layer.terms])]
        assert len(graph_of(ref)) == n_layers
        ref_loss = _autograd_step(ref, opt_ref, lambda: forward_of(ref), labels, trainable)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-7)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        sa, sb = opt_ours.state.get(a, {}), opt_ref.state.get(b, {})
        assert sa.keys() == sb.keys(), name
        if "momentum_buffer" in sa:
            torch.testing.assert_close(sa["momentum_buffer"], sb["momentum_buffer"], rtol=1e-5, atol=1e-6)


def test_dbn_classifier_matches_autograd_sgd():
    g = torch.Generator().manual_seed(0)
    net = DeepClassifier([12, 9, 7, 8], 5, g, init_std=0.5)
    x = torch.rand(16, 12, generator=g)
    labels = torch.randint(0, 5, (16,), generator=g)
    # two top-only steps (the lower layers get no buffer), then all layers: their buffers start fresh
    schedule = [(0.5, 0.0, 4), (0.5, 0.0, 4), (0.5, 1e-3, 1), (0.9, 1e-3, 1), (0.0, 0.0, 1), (0.9, 0.0, 2)]
    _compare(net, lambda n: n.graph(), lambda n: n(x), x, labels, schedule)


@pytest.mark.parametrize("sizes", [[10, 6, 5], [10, 6, 5, 4]])
def test_dbm_classifier_matches_autograd_sgd(sizes):
    """The DBM's classifier uses each weight twice (bottom-up and top-down from the fixed q)."""
    g = torch.Generator().manual_seed(1)
    dbm = DBM(sizes)
    with torch.no_grad():
        for p in [*dbm.weights, *dbm.biases]:
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    net = DBMClassifier(dbm, 3, init_std=0.5, generator=g)
    v = torch.rand(20, sizes[0], generator=g)
    q = [torch.rand(20, n, generator=g) for n in sizes[2:]]
    rows = torch.tensor([3, 1, 4, 15, 9, 2, 6, 5])
    labels = torch.randint(0, 3, (8,), generator=g)
    schedule = [(0.5, 1e-4, 1), (0.5, 1e-4, 1), (0.9, 1e-4, 1)]
    _compare(net, lambda n: n.graph(q), lambda n: n(v[rows], [x[rows] for x in q]), v[rows], labels, schedule, rows)


def test_huge_scores_give_a_finite_loss_and_step():
    net = DeepClassifier([4, 3], 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.layers[-1].weight.fill_(1e4)
        net.layers[-1].bias.copy_(torch.tensor([0.0, 3e4]))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss, _ = backprop.sgd_step(net.graph(), opt, torch.ones(2, 4), torch.tensor([0, 1]))
    assert torch.isfinite(loss) and loss > 1e4 / 2
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_only_plain_sgd_is_supported():
    net = DeepClassifier([4, 3], 2)
    assert backprop.supports(torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    assert not backprop.supports(torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True))
    assert not backprop.supports(torch.optim.Adam(net.parameters()))


def test_an_output_feeding_two_terms_is_refused():
    w = torch.zeros(3, 3)
    graph = [backprop.Layer(torch.zeros(3), (backprop.Term(0, w, True),)),
             backprop.Layer(torch.zeros(3), (backprop.Term(1, w.clone(), True), backprop.Term(1, w.clone(), False)))]
    opt = torch.optim.SGD([graph[0].bias], lr=0.1)
    with pytest.raises(ValueError, match="layer 1 feeds more than one term"):
        backprop.sgd_step(graph, opt, torch.ones(2, 3), torch.tensor([0, 1]))
