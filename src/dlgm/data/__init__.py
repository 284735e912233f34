"""The data layer: downloads and per-corpus preparation into data/processed (knows nothing of models)."""
