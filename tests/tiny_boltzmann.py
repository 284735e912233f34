"""Random tiny RBMs and DBMs (float64) for the exact-answer tests of AIS and the DBM."""
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


def random_dbm(sizes, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    dbm = DBM(sizes, dtype=torch.float64)
    with torch.no_grad():
        for w in dbm.weights:
            w.copy_(torch.randn(w.shape, generator=g, dtype=torch.float64) * scale)
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float64) * 0.5)
    return dbm
