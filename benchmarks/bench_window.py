"""The window network of nn_crf (Collobert et al. 2011, Table 5: window 5, word 50 + caps 5, 300
hidden units): a training step (loss, backward, the fan-in SGD step) with the word-level (WLL) and
the sentence-level (SLL) likelihood, and prediction (Viterbi) of a validation batch.

References timed in the same run: WLL, the step's own matrix products alone; SLL and prediction,
the same network with pytorch-crf as the sentence-level layer. Sentences are all ``--length``
words (CoNLL-2000 and the PTB sample average 24). Usage:
python -m benchmarks.bench_window [--threads 1] [--tags 45] [--batch 16] [--length 24] [--steps 20]
"""
from __future__ import annotations

import torch

from benchmarks.common import gemm_floor, paired, row, setup, standalone
from dlgm.nlp.train import FanInSGD
from dlgm.nlp.window import WindowNetwork
from dlgm.loop_products import flops, window_spec

VOCABULARY = 20000  # the tasks' dictionaries hold 10,000-20,000 words (min_count 2)


def run(args) -> list:
    import torchcrf

    device = setup(args)
    tags, batch, length, steps, eval_batch = ((5, 2, 6, 2, 4) if args.tiny else
                                              (args.tags, args.batch, args.length, args.steps, 256))
    g = torch.Generator().manual_seed(0)
    sentences = lambda n: [t.to(device) for t in (torch.randint(1, VOCABULARY, (n, length), generator=g),  # noqa: E731
                                                  torch.randint(1, 5, (n, length), generator=g),
                                                  torch.randint(0, tags, (n, length), generator=g))]
    words, caps, gold = sentences(batch)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    models = {lik: WindowNetwork(VOCABULARY, tags, sentence_level=lik == "sll").to(device) for lik in ("wll", "sll")}
    peer_net, peer_crf = WindowNetwork(VOCABULARY, tags).to(device), torchcrf.CRF(tags, batch_first=True).to(device)
    optimizers = {lik: FanInSGD(m, 0.01, True) for lik, m in models.items()}
    peer_opt = torch.optim.SGD(list(peer_net.parameters()) + list(peer_crf.parameters()), lr=1e-4)

    def train(lik):
        def fn():
            model, opt = models[lik], optimizers[lik]
            for _ in range(steps):
                loss = model.loss(model(words, caps), gold, mask)
                opt.zero_grad()
                loss.backward()
                opt.step()
            float(loss.detach())
        return fn

    def peer_train():
        for _ in range(steps):
            loss = -peer_crf(peer_net(words, caps), gold, mask, reduction="sum")
            peer_opt.zero_grad()
            loss.backward()
            peer_opt.step()
        float(loss.detach())

    eval_words, eval_caps, _ = sentences(eval_batch)
    eval_mask = torch.ones(eval_batch, length, dtype=torch.bool, device=device)

    @torch.no_grad()
    def predict():
        model = models["sll"]
        model.predict(model(eval_words, eval_caps), eval_mask).cpu()

    @torch.no_grad()
    def peer_predict():
        peer_crf.decode(peer_net(eval_words, eval_caps), eval_mask)  # host lists, as dlgm's .cpu()

    dims = (5 * (50 + 5), 300, tags)
    floor, train_flops = gemm_floor(window_spec(batch * length, *dims, train=True), steps, device)
    predict_flops = flops(window_spec(eval_batch * length, *dims, train=False))
    t = paired([train("wll"), floor, train("sll"), peer_train, predict, peer_predict], args.repeats, device)
    size = f"{tags} tags, {batch} sentences x {length} words"
    return [
        row("window_wll", f"window network WLL training step, {size}", "step", t[0], "its matrix products alone",
            t[1], "floor", args, device, scale=steps, flops=train_flops / steps),
        row("window_sll", f"window network SLL training step, {size}", "step", t[2],
            "same network + pytorch-crf (torch SGD)", t[3], "peer", args, device, scale=steps,
            flops=train_flops / steps),
        row("window_predict", f"window network SLL prediction (Viterbi), {tags} tags, {eval_batch} x {length}",
            "batch", t[4], "same network + pytorch-crf decode", t[5], "peer", args, device, flops=predict_flops),
    ]


def _args(p):
    p.add_argument("--tags", type=int, default=45)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=24)
    p.add_argument("--steps", type=int, default=20, help="training steps per timing")


main = standalone(run, __doc__, _args)

if __name__ == "__main__":
    main()
