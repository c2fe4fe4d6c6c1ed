"""Reference replication of the 'denoiser as a prior' literature.

Layers, lowest first (a module imports only its own layer and the ones below; tests/test_layers.py checks it):
  core         params (+ config/: one schema per params section), io, seeding, runtime, markdown, progress
  data         assets (registry of external files, verified downloads through a mirror), image sets, metrics
  models       denoisers (one interface D(x, sigma), priors by name), operators (forward models), noise models
  methods      the algorithms that take a denoiser, an operator and a noise model (samplers, solvers), training
  pipeline     stage declarations, manifests, the scale-out runner, the freshness and reproducibility checks
  experiments  one module per paper: wires the above to data, writes per-image results (+ a manifest per stage)
  report       verdicts, tables and figures, built from results and manifests only
  entry        the stage table (stages.py), the command line (cli.py) and the dry run of the paper profile (dryrun.py)
"""

__version__ = "0.1.0"
