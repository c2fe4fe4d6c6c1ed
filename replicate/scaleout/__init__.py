"""Scale-out of per-image stages (issue 8): shards, resumable part files, local process pool or Slurm array jobs.

See README.md in this folder for running the paper profile on a Slurm cluster.
"""
from replicate.scaleout.launch import LOG_ENV, per_process, run_items, run_per_image, settings
from replicate.scaleout.shards import Parts, indices_for, merge, shard_of

__all__ = ["LOG_ENV", "Parts", "indices_for", "merge", "per_process", "run_items", "run_per_image", "settings", "shard_of"]
