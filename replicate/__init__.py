"""Reference replication of the 'denoiser as a prior' literature.

Layers (each only imports the ones above it):
  assets      -> registry of external files, verified downloads through a mirror
  denoisers   -> one interface D(x, sigma) = E[x | x + sigma n] and adapters for every prior
  operators   -> forward models A with adjoints / pseudo-inverses, and noise models
  samplers    -> algorithms that take a denoiser, an operator and a noise model
  experiments -> one module per paper, wiring the above to data; writes per-image results
  report      -> tables, figures, statistics and the comparison with published numbers
"""

__version__ = "0.1.0"
