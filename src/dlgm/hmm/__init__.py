"""Hidden Markov models in log space: inference, GMM emissions, decoding graphs, Baum-Welch.

Everything here is batched tensor code (utterances x frames x states) and knows nothing of files.
"""
