"""Random tiny RBMs and DBMs (float64) for the exact-answer tests of AIS and the DBM, and the
uniforms of ``bernoulli`` rebuilt from its documented scheme."""
import math

import torch

from dlgm.boltzmann.dbm import DBM
from dlgm.boltzmann.rbm import RBM


def random_rbm(n_vis, n_hid, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_vis, n_hid, init_std=scale, generator=g, dtype=torch.float64)
    with torch.no_grad():
        rbm.b_vis.copy_(torch.randn(n_vis, generator=g, dtype=torch.float64) * 0.5)
        rbm.b_hid.copy_(torch.randn(n_hid, generator=g, dtype=torch.float64) * 0.5)
    return rbm


def random_dbm(sizes, seed, scale=1.0, n_labels=0):
    """Weights N(0, scale^2), biases N(0, 0.25); the label parameters, if any, drawn last."""
    g = torch.Generator().manual_seed(seed)
    dbm = DBM(sizes, n_labels=n_labels, dtype=torch.float64)
    with torch.no_grad():
        for w in dbm.weights:
            w.copy_(torch.randn(w.shape, generator=g, dtype=torch.float64) * scale)
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float64) * 0.5)
        if n_labels:
            dbm.label_weights.copy_(torch.randn(dbm.label_weights.shape, generator=g, dtype=torch.float64) * scale)
            dbm.label_bias.copy_(torch.randn(n_labels, generator=g, dtype=torch.float64) * 0.5)
    return dbm


def bernoulli_uniforms(shape, generator):
    """The uniforms ``dlgm.boltzmann.rbm.bernoulli`` compares with, rebuilt bit by bit with Python
    integers: 64-bit draws cut into 16-bit words, lowest word first; the signed word s gives
    (s + 32768 + 1/2) / 2^16. Consumes the generator exactly as ``bernoulli`` does."""
    n = math.prod(shape)
    draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, None, generator=generator)
    words = [(int(d) >> (16 * j)) & 0xFFFF for d in draws for j in range(4)][:n]
    signed = [w - 65536 if w >= 32768 else w for w in words]
    return ((torch.tensor(signed, dtype=torch.float64) + 32768.5) / 65536).reshape(shape)
