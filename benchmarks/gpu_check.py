"""GPU check, about 8 minutes on one GPU: CPU/GPU parity of each paper's step, the benchmark table on
the device at paper sizes, and the projected full-protocol time per paper.

    python -m benchmarks.gpu_check [--device cuda] [--out $OUT/gpu_check.txt] [--tiny]

Parity: the same model, inputs and seeds on the CPU and on --device; the deterministic part of each
paper's step (DBN forward/backward and up-pass classification, DBM mean-field + bound, CRF
likelihood, gradients and Viterbi, HMM posteriors, BLSTM CE and CTC losses and gradients) must agree
within float32 tolerance; the stochastic steps (CD-1 epoch, DBM update) draw from different generators
on each device, so their reconstruction errors must agree within a statistical tolerance.
With --device cpu both sides run on the CPU (the code path is the same). Everything printed goes to
stdout and to --out (default $OUT/gpu_check.txt, else reports/gpu_check.txt).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
            st.flush()
        return len(s)



def parity_checks(device: torch.device):
    """[(name, callable(device) -> list of tensors, rtol, atol)]."""
    from dlgm.boltzmann.dbm import DBM
    from dlgm.boltzmann.rbm import RBM, MomentumSGD, cd_epoch, rbm_params
    from dlgm.crf import LinearChainCRF
    from dlgm.dbn.finetune import DeepClassifier
    from dlgm.dbn.labelled import LabelledRBM
    from dlgm.dbn.updown import UpDownDBN
    from dlgm.hmm.inference import forward_backward
    from dlgm.speech.model import BLSTM

    x = (torch.rand(64, 784, generator=torch.Generator().manual_seed(0)) < 0.13).float()
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))

    def dbn_backprop(dev):
        net = DeepClassifier([784, 50, 40, 60], 10, torch.Generator().manual_seed(0), init_std=0.1).to(dev)
        loss = F.cross_entropy(net(x.to(dev)), y.to(dev))
        loss.backward()
        return [loss.detach()] + [p.grad for p in net.parameters()]

    def dbn_updown_classify(dev):
        g = torch.Generator().manual_seed(0)
        rbms = [RBM(784, 50, init_std=0.1, generator=g), RBM(50, 40, init_std=0.1, generator=g)]
        dbn = UpDownDBN(rbms, LabelledRBM(40, 10, 60, init_std=0.1, generator=g)).to(dev)
        return [dbn.top.label_free_energies(dbn.up_pass(x.to(dev)))]

    def dbm_mean_field(dev):
        g = torch.Generator().manual_seed(0)
        dbm = DBM([784, 50, 60])
        with torch.no_grad():
            for w in dbm.weights:
                w.copy_(torch.randn(w.shape, generator=g) * 0.1)
        dbm = dbm.to(dev)
        mu = dbm.mean_field(x.to(dev), 10)
        return mu[1:] + [dbm.variational_bound(mu)]

    def crf(dev):
        g = torch.Generator().manual_seed(0)
        em = torch.randn(8, 12, 9, generator=g).to(dev).requires_grad_()
        tags = torch.randint(0, 9, (8, 12), generator=g).to(dev)
        mask = (torch.arange(12)[None] < torch.randint(6, 13, (8,), generator=g)[:, None]).to(dev)
        mask[:, 0] = True
        model = LinearChainCRF(9).to(dev)
        with torch.no_grad():
            model.transitions.copy_(torch.randn(9, 9, generator=g))
        ll = model.log_likelihood(em, tags, mask)
        ll.sum().backward()
        return [ll.detach(), em.grad, model.decode(em.detach(), mask).float()]

    def hmm(dev):
        g = torch.Generator().manual_seed(0)
        e = torch.randn(4, 50, 7, generator=g) * 3
        lt = torch.log_softmax(torch.randn(7, 7, generator=g), -1)
        li = torch.log_softmax(torch.randn(7, generator=g), -1)
        post = forward_backward(e.to(dev), lt.to(dev), li.to(dev))
        return [post.loglik, post.gamma]

    def blstm(dev):
        torch.manual_seed(0)
        model = BLSTM(123, 16, 2, 12).to(dev)
        feats = torch.randn(3, 40, 123, generator=torch.Generator().manual_seed(0)).to(dev)
        lengths = torch.tensor([40, 33, 25])
        scores = model(feats, lengths)
        target = torch.randint(0, 12, (3, 40), generator=torch.Generator().manual_seed(1)).to(dev)
        ce = F.cross_entropy(scores.reshape(-1, 12), target.reshape(-1), reduction="sum")
        labels = torch.randint(1, 12, (3, 5), generator=torch.Generator().manual_seed(2)).to(dev)
        ctc = F.ctc_loss(scores.log_softmax(-1).transpose(0, 1), labels, lengths, torch.full((3,), 5), reduction="sum")
        (ce + ctc).backward()
        return [ce.detach(), ctc.detach()] + [p.grad for p in model.parameters()]

    def cd1_epoch(dev):  # stochastic: the reconstruction error of one epoch, same model and data
        rbm = RBM(784, 64, generator=torch.Generator().manual_seed(0)).to(dev)
        sgd = MomentumSGD(rbm_params(rbm)).to(dev)
        data = (torch.rand(2000, 784, generator=torch.Generator().manual_seed(3)) < 0.13).float().to(dev)
        batches = torch.arange(2000, device=dev).view(20, 100)
        err = cd_epoch(rbm, sgd, data, batches, lr=0.1, momentum=0.5, weight_cost=2e-4, k=1,
                       generator=torch.Generator(device=dev).manual_seed(0))
        return [err]

    return [("dbn backprop step (loss, gradients)", dbn_backprop, 1e-4, 1e-6),
            ("dbn up-pass + label free energies", dbn_updown_classify, 1e-5, 1e-4),
            ("dbm mean-field (10 sweeps) + bound", dbm_mean_field, 1e-4, 1e-4),
            ("crf log-likelihood, gradient, Viterbi", crf, 1e-4, 1e-5),
            ("hmm forward-backward", hmm, 1e-4, 1e-5),
            ("blstm CE + CTC losses and gradients", blstm, 1e-3, 1e-5),
            ("cd-1 epoch recon error (stochastic)", cd1_epoch, 0.05, 0.0)]


def parity(device: torch.device, out) -> bool:
    cpu, ok = torch.device("cpu"), True
    # cuDNN's LSTM may use TF32 by default: float32 parity needs full float32 products
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for check in parity_checks(device):
            ok &= _compare(check, device, cpu, out)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return ok


def _compare(check, device, cpu, out) -> bool:
    name, fn, rtol, atol = check
    a, b = fn(cpu), fn(device)
    gaps = [float((u.detach().cpu().double() - v.detach().cpu().double()).abs().max()) for u, v in zip(a, b)]
    good = all(torch.allclose(u.detach().cpu(), v.detach().cpu(), rtol=rtol, atol=atol) for u, v in zip(a, b))
    print(f"  parity {'ok  ' if good else 'FAIL'} {name:42s} max |cpu - {device.type}| {max(gaps):.2e} "
          f"(rtol {rtol:g}, atol {atol:g})", file=out)
    return good


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--tiny", action="store_true", help="tiny benchmark sizes (for a CPU test)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out_path = Path(args.out or (Path(os.environ["OUT"]) / "gpu_check.txt" if os.environ.get("OUT")
                                 else "reports/gpu_check.txt"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    t0 = time.time()
    with open(out_path, "w") as f:
        out = Tee(sys.stdout, f)
        from dlgm.runinfo import device_name

        print(f"gpu_check on {device_name(device)}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
              file=out)
        print("1. CPU/device parity of each paper's step", file=out)
        ok = parity(device, out)
        print(f"\n2. benchmark table on {device.type} ({'tiny' if args.tiny else 'paper'} sizes), "
              f"3. projected full protocol (config/config.yaml)", file=out)
        from benchmarks.__main__ import run_all

        bench_argv = ["--device", args.device, "--threads", str(args.threads), "--repeats", str(args.repeats),
                      "--out", str(out_path.with_name("benchmarks.csv"))]
        run_all(bench_argv + (["--tiny"] if args.tiny else []), file=out)
        print(f"\ngpu_check finished in {time.time() - t0:.0f} s; parity {'ok' if ok else 'FAILED'}; "
              f"written to {out_path}", file=out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
