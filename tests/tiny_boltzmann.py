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
