"""Speech recognisers on top of dlgm.hmm: the hybrid deep BLSTM-HMM and CTC (Graves et al. 2013)."""
