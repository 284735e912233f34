"""Deep belief nets: Hinton, Osindero & Teh 2006 (greedy + up-down) and the backprop-fine-tuned
DBN of Hinton & Salakhutdinov 2006. Algorithms only: no files, no Snakemake (see commands/dbn.py)."""
