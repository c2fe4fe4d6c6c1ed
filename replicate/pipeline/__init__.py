"""The pipeline: stages declared once (stage.py), their code dependencies (codedeps.py), dvc.yaml generated from them
(dvcgen.py), the manifest each run writes (manifest.py, run.py), and the checks that committed results are fresh
(check.py) and reproducible (rerun.py). The stage runner records what a stage ran on; it computes nothing of the
results, so it is not among a stage's dependencies."""
