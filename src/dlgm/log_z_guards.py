"""The fixed effort of the lower bounds that guard an AIS estimate of log Z, free of torch so that
the time projection at Snakemake's start counts the same work that ais_diagnostics does."""

ASCENT_SWEEPS = 50  # coordinate-ascent sweeps from each guard image to its best state
