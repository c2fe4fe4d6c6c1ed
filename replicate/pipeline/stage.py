"""A stage: one step of the pipeline, declared once and used four ways.

The same declaration is the DVC stage (dvc.yaml is generated from it: replicate.pipeline.dvcgen), the CLI command
(`python -m replicate <stage>`, the DVC stage name), the manifest written next to its outputs (what ran, on what
code, parameters and inputs: replicate.pipeline.manifest) and the unit that `make check-repro` re-executes
(replicate.pipeline.rerun).

Paths are templates relative to the repository with `{profile}` for the active profile, e.g.
`results/{profile}/mohan2020/generalization.csv`.

A per-image stage (`PerImage`) computes its rows image by image: `plan(prm) -> (prm, items)` says what runs (and may
record what is not available), `rows(prm, *item) -> [row dicts]` computes one item, and the rows of every item are
merged into one CSV in item order (replicate.scaleout: sharded, resumable). `key_columns` name the CSV columns that
identify an item (its first fields), so that single items can be recomputed and compared with the committed rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

PROFILE = "{profile}"


class UnknownStage(LookupError):
    """A stage name that the pipeline does not have (the message lists the close ones)."""


@dataclass(frozen=True)
class PerImage:
    rows: Callable[..., list[dict]]
    plan: Callable[[dict], tuple[dict, list[tuple]]]
    csv: str
    side: str | None = None            # a folder the items also write into (examples, arrays)
    key_columns: tuple[str, ...] = ("set", "image_index")


@dataclass(frozen=True)
class Stage:
    name: str                          # the DVC stage and CLI command, "<paper>_<what>"
    section: str                       # the params.yaml section the stage reads (its paper)
    run: Callable[[dict], None] | None
    outs: tuple[str, ...]
    inputs: tuple[str, ...] = ()       # files / folders read: other stages' outputs, committed files
    also_reads: tuple[str, ...] = ()   # further params sections read (e.g. the lecture reads mohan2020's models)
    persist: tuple[str, ...] = ()      # outputs DVC must keep before rerunning (resumable training checkpoints)
    per_image: PerImage | None = None
    per_profile: bool = True           # False: the same outputs whatever the profile (the global report)
    # what `make check-repro` compares after rerunning the whole stage (None: every output; (): nothing, e.g. a
    # table of timings); a report compares its summary.json, of which its markdown and figures are renderings
    compare: tuple[str, ...] | None = None
    about: str = ""

    def __post_init__(self):
        if self.run is None and self.per_image is None:
            raise ValueError(f"stage {self.name}: give `run` or `per_image`")
        for path in self.outs + self.inputs:
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"stage {self.name}: {path!r} must be relative to the repository")
        if self.per_image and self.per_image.csv not in self.outs:
            raise ValueError(f"stage {self.name}: its per-image CSV {self.per_image.csv} must be one of its outs")

    @property
    def sections(self) -> tuple[str, ...]:
        return (self.section, *self.also_reads)

    @property
    def function(self) -> Callable:
        return self.run if self.run is not None else self.per_image.rows

    @property
    def module(self) -> str:
        return self.function.__module__

    @property
    def manifest(self) -> str:
        """Where the stage's manifest goes (one of its outs)."""
        return f"results/{PROFILE}/manifests/{self.name}.json" if self.per_profile else f"results/manifests/{self.name}.json"

    @property
    def all_outs(self) -> tuple[str, ...]:
        return (*self.outs, self.manifest)


def at(template: str, profile: str) -> str:
    """A path template for one profile."""
    return template.replace(PROFILE, profile)


@dataclass
class Diagnostics:
    """What a stage records about its own run (preconditions: a denoiser's gain at its training noise level, a
    training loss that fell, a sampler that diverged on some images); written into the manifest."""
    values: dict = field(default_factory=dict)

    def note(self, key: str, value) -> None:
        self.values[key] = value


DIAGNOSTICS = Diagnostics()


def note(key: str, value) -> None:
    """Record one diagnostic of the running stage (see Diagnostics)."""
    DIAGNOSTICS.note(key, value)
