"""The O(L) chain recursions equal the dense forward-backward/Viterbi on the chain's matrix."""
import math

import torch

from dlgm.hmm.chain import chain_forward_backward, chain_viterbi
from dlgm.hmm.graph import linear_graph
from dlgm.hmm.inference import forward_backward, viterbi


def test_chain_equals_dense():
    gen = torch.Generator().manual_seed(0)
    log_self = torch.log(torch.rand(12, generator=gen, dtype=torch.float64) * 0.8 + 0.1)
    graph = linear_graph([[0, 2, 1], [3], [1, 1]], log_self, 3)
    lengths = torch.tensor([14, 5, 9])
    state_ll = torch.randn(3, 14, 12, generator=gen, dtype=torch.float64) * 2
    log_emit = graph.emissions(state_ll)
    dense = forward_backward(log_emit, graph.log_trans, graph.log_init, lengths, graph.log_final, transitions=True)
    loglik, gamma, stay_n, leave_n = chain_forward_backward(log_emit, graph.stay, graph.leave, graph.states, lengths)
    torch.testing.assert_close(loglik, dense.loglik)
    torch.testing.assert_close(gamma, dense.gamma)
    torch.testing.assert_close(stay_n, dense.xi.diagonal(dim1=1, dim2=2) * graph.valid)
    sup = torch.nn.functional.pad(dense.xi.diagonal(offset=1, dim1=1, dim2=2), (0, 1))
    exits = leave_n - sup
    # exits happen once per utterance, from its last chain state
    torch.testing.assert_close(exits.sum(1), torch.ones(3, dtype=torch.float64))
    path, score = chain_viterbi(log_emit, graph.stay, graph.leave, graph.states, lengths)
    dpath, dscore = viterbi(log_emit, graph.log_trans, graph.log_init, lengths, graph.log_final)
    torch.testing.assert_close(score, dscore)
    assert torch.equal(path, dpath)
    assert not math.isinf(score.min().item())
