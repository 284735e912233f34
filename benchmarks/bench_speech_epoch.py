"""BLSTM training (hybrid frame cross-entropy and CTC): dlgm's mini-batch loop (padded batches,
``dlgm.speech.train.train_step``) against a plain torch loop of the same shapes (nn.LSTM on the
padded batch, the same loss, SGD). Paper sizes by default: hybrid 5 x 500 cells per direction,
CTC 3 x 250, one utterance per update (GJM13, GMH13), random 123-dim frames. Also the papers' weight
noise on the hybrid's network: dlgm.speech.model.WeightNoise (drawn in place into buffers) against
fresh tensors each update (``torch.randn(p.shape) * std``, the same draws); and one batch of
utterances of different lengths through dlgm's BLSTM against nn.LSTM on a PackedSequence; and, with
--threads above 1, each network's loop at that many threads against the same loop on one thread.
Usage: python -m benchmarks.bench_speech_epoch [--threads 2] [--utterances 4] [--frames 200]
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import paired, row, setup, standalone
from dlgm.hmm.batching import length_batches
from dlgm.loop_products import lstm_flops
from dlgm.runinfo import one_cpu_thread
from dlgm.speech.model import BLSTM, WeightNoise
from dlgm.speech.train import SeqData, train_step


def make_data(n, frames, outputs, kind, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(frames // 2, frames + 1, (n,), generator=g).tolist()
    feats = [torch.randn(t, 123, generator=g).to(device) for t in lengths]
    if kind == "ce":
        targets = [torch.randint(0, outputs, (t,), generator=g).to(device) for t in lengths]
    else:  # about one label per 8 frames, labels 1..outputs-1 (0 is the blank)
        targets = [torch.randint(1, outputs, (max(1, t // 8),), generator=g).to(device) for t in lengths]
    return SeqData(feats, targets)


def plain_loop(model, data, kind, batch_size):
    """The same shapes through nn.LSTM without packing: pad, run, loss, step."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def run():
        for idx in length_batches(data.lengths, batch_size):
            x = torch.nn.utils.rnn.pad_sequence([data.feats[i] for i in idx], batch_first=True)
            hidden, _ = model.lstm(x)
            scores = model.out(hidden)
            if kind == "ce":
                y = torch.nn.utils.rnn.pad_sequence([data.targets[i] for i in idx], batch_first=True, padding_value=-100)
                loss = F.cross_entropy(scores.flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum")
            else:
                lengths = torch.tensor([len(data.feats[i]) for i in idx])
                labels = [data.targets[i] for i in idx]
                loss = F.ctc_loss(scores.log_softmax(-1).transpose(0, 1), torch.cat(labels), lengths,
                                  torch.tensor([len(t) for t in labels]), reduction="sum", zero_infinity=True)
            opt.zero_grad(set_to_none=True)
            (loss / len(idx)).backward()
            opt.step()
    return run


def dlgm_loop(model, data, kind, batch_size, noise):
    """dlgm.speech.train.train's epoch of updates (train_step), without the dev evaluation and checkpoint."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    noisy = WeightNoise(model, noise, torch.Generator(device=data.feats[0].device).manual_seed(1))

    def run():
        for idx in length_batches(data.lengths, batch_size, torch.Generator().manual_seed(0)):
            train_step(model, data, idx, kind, opt, noisy, clip_norm=0.0)
    return run


def batch_passes(model, data):
    """(dlgm's BLSTM, nn.LSTM on a PackedSequence): forward and backward of all utterances as one batch."""
    x = torch.nn.utils.rnn.pad_sequence(data.feats, batch_first=True)
    lengths = torch.tensor(data.lengths)

    def ours():
        model(x, lengths).sum().backward()

    def packed():
        seq = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = model.lstm(seq)
        hidden, _ = torch.nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
        model.out(hidden).sum().backward()
    return ours, packed


def noise_draws(model, std):
    """(dlgm's WeightNoise, fresh tensors) each adding and removing one draw over every weight."""
    ours = WeightNoise(model, std, torch.Generator(device=model.out.weight.device).manual_seed(2))
    gen = torch.Generator(device=model.out.weight.device).manual_seed(2)

    def dlgm_noise():
        with ours():
            pass

    @torch.no_grad()
    def fresh():
        noises = [torch.randn(p.shape, generator=gen, device=p.device) * std for p in model.parameters()]
        for p, n in zip(model.parameters(), noises):
            p.add_(n)
        for p, n in zip(model.parameters(), noises):
            p.sub_(n)
    return dlgm_noise, fresh


def on_one_thread(fn, device):
    def run():
        with one_cpu_thread(device):
            fn()
    return run


def run(args) -> list:
    device = setup(args)
    rows, kind_key = [], {"ce": "hybrid", "ctc": "ctc"}
    systems = [("hybrid", "ce", 5, 500, 183), ("CTC", "ctc", 3, 250, 62)]  # TIMIT: 61 phones x 3 states; 61 + blank
    n, frames, batch = (4, 30, 2) if args.tiny else (args.utterances, args.frames, args.batch)
    for name, kind, layers, hidden, outputs in systems:
        if args.tiny:
            layers, hidden = 1, 8
        data = make_data(n, frames, outputs, kind, device)
        ours_model = BLSTM(123, hidden, layers, outputs).to(device)
        plain_model = BLSTM(123, hidden, layers, outputs).to(device)
        plain_model.load_state_dict(ours_model.state_dict())
        ours = dlgm_loop(ours_model, data, kind, batch, args.weight_noise)
        t = paired([ours, plain_loop(plain_model, data, kind, batch)], args.repeats, device)
        label = f"{name} BLSTM {layers}x{hidden}, batch {batch}, ~{frames * 3 // 4} frames/utterance"
        rows.append(row(kind_key[kind], label, "utterance", t[0], "plain torch loop (nn.LSTM, padded)", t[1], "peer", args, device,
                        None, scale=n, flops=lstm_flops(sum(data.lengths) / n, layers, hidden, outputs)))
        threads = torch.get_num_threads()
        if device.type == "cpu" and threads > 1:
            t = paired([ours, on_one_thread(ours, device)], args.repeats, device)
            rows.append(row("threads", f"{name} BLSTM {layers}x{hidden}, batch {batch}: the loop above on {threads} threads",
                            "utterance", t[0], "the same loop on one thread", t[1], "peer", args, device, None, scale=n))
        if kind == "ce":
            t = paired(batch_passes(ours_model, data), args.repeats, device)
            rows.append(row("packed", f"{name} BLSTM {layers}x{hidden}, all {n} utterances in one batch, forward + backward",
                            "batch", t[0], "nn.LSTM on a PackedSequence", t[1], "peer", args, device, None))
            t = paired(noise_draws(ours_model, 0.075), args.repeats, device)
            weights = sum(p.numel() for p in ours_model.parameters())
            rows.append(row("weight_noise", f"weight noise on the {name} BLSTM {layers}x{hidden} ({weights:,} weights)",
                            "update", t[0], "fresh tensors each update (randn * std)", t[1], "peer", args, device,
                            flops=weights))  # the projection's work unit for this key: one weight noised
    return rows


def _args(p):
    p.add_argument("--utterances", type=int, default=4)
    p.add_argument("--frames", type=int, default=200, help="longest utterance; lengths are drawn in [frames/2, frames]")
    p.add_argument("--batch", type=int, default=1, help="utterances per update (the papers: 1)")
    p.add_argument("--weight-noise", type=float, default=0.0, help="dlgm's weight noise (the papers: 0.075)")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
