"""Boltzmann machines shared by the DBN and DBM papers: the binary RBM, CD/PCD, exact enumeration."""
from dlgm.boltzmann.rbm import RBM, MomentumSGD, bernoulli, cd_epoch, cd_statistics, rbm_params

__all__ = ["RBM", "MomentumSGD", "bernoulli", "cd_epoch", "cd_statistics", "rbm_params"]
