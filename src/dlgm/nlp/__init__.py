"""Collobert et al. (2011) window approach: features, tag schemes, network, training, scoring."""
