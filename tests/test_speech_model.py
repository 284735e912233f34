"""The BLSTM's padded forward against torch's nn.LSTM on a PackedSequence, the exact answer for
utterances of different lengths: outputs and gradients on every real frame."""
import pytest
import torch
from torch import nn

from dlgm.speech.model import BLSTM, reverse_within


def packed(model: BLSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    seq = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    hidden, _ = model.lstm(seq)
    hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
    return model.out(hidden)


def test_reverse_within_reverses_real_frames_and_keeps_the_padding():
    x = torch.arange(12.0).view(2, 6, 1)
    out = reverse_within(x, torch.tensor([4, 6]))
    assert out[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    assert out[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    assert torch.equal(reverse_within(out, torch.tensor([4, 6])), x)


@pytest.mark.parametrize("layers", [1, 3])
def test_padded_forward_equals_the_packed_lstm(layers):
    """Lengths 1 to T in one batch, unsorted, padding filled with large values that must not leak
    into any real frame; float64 so that equality is to rounding."""
    torch.manual_seed(0)
    model = BLSTM(5, 7, layers, 4).double()
    lengths = torch.tensor([6, 1, 9, 4])
    x = torch.randn(4, 9, 5, dtype=torch.double)
    x[torch.arange(9) >= lengths.view(-1, 1)] = 1e3
    x.requires_grad_()
    ours, theirs = model(x, lengths), packed(model, x, lengths)
    real = torch.arange(9) < lengths.view(-1, 1)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    weights = torch.randn_like(ours) * real.unsqueeze(2)  # a loss on the real frames only
    g_ours = torch.autograd.grad((ours * weights).sum(), [x, *model.parameters()])
    g_theirs = torch.autograd.grad((theirs * weights).sum(), [x, *model.parameters()])
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_one_utterance_is_bit_for_bit_the_packed_lstm():
    """The papers' protocol (one utterance per update) gives the very numbers of the packed LSTM
    that the reference runs used, forward and gradient."""
    torch.manual_seed(1)
    model = BLSTM(8, 16, 2, 6)
    x, lengths = torch.randn(1, 30, 8), torch.tensor([30])
    ours, theirs = model(x, lengths), packed(model, x, lengths)
    assert torch.equal(ours, theirs)
    for a, b in zip(torch.autograd.grad(ours.sin().sum(), list(model.parameters())),
                    torch.autograd.grad(theirs.sin().sum(), list(model.parameters()))):
        assert torch.equal(a, b)
