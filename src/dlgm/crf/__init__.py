"""Linear-chain CRF over network scores (Collobert et al. 2011, sentence-level log-likelihood).

Batched over padded sentences, vectorised over tags, in log space; no host round trips.
"""
from dlgm.crf.linear_chain import LinearChainCRF, gold_score, log_partition, viterbi

__all__ = ["LinearChainCRF", "gold_score", "log_partition", "viterbi"]
