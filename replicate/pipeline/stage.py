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
    run: Callable[[dict], None] | None   # the stage's body (after the per-image rows when it has both)
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
    metrics: tuple[str, ...] = ()      # DVC metrics files among its outputs (`dvc metrics show`, `dvc exp show`)
    plots: tuple[str, ...] = ()        # DVC plots files or folders among its outputs (`dvc plots show / diff`)
    plot_defs: tuple[dict, ...] = ()   # dvc.yaml's top-level plot definitions: {id, file, x, y: [...], title}

    def __post_init__(self):
        if self.run is None and self.per_image is None:
            raise ValueError(f"stage {self.name}: give `run` or `per_image`")
        for path in self.outs + self.inputs + self.metrics + self.plots:
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"stage {self.name}: {path!r} must be relative to the repository")
        if self.per_image and self.per_image.csv not in self.outs:
            raise ValueError(f"stage {self.name}: its per-image CSV {self.per_image.csv} must be one of its outs")

    @property
    def sections(self) -> tuple[str, ...]:
        return (self.section, *self.also_reads)

    @property
    def top_level_params(self) -> tuple[str, ...]:
        """The top-level keys of params.yaml the stage depends on (`prior`: the papers whose prior it replaces)."""
        from replicate.params import PRIOR_SECTIONS

        if not self.per_profile:
            return ()
        return ("profile", "seed") + (("prior",) if self.section in PRIOR_SECTIONS else ())

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
        return (*self.outs, *self.metrics, *self.plots, self.manifest)


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


def per_image_stage(paper: str, what: str, rows: Callable[..., list[dict]], plan: Callable, *, about: str,
                    inputs: tuple[str, ...] = (), also_reads: tuple[str, ...] = (), arrays: bool = False,
                    availability: bool = False, key_columns: tuple[str, ...] = ("set", "image_index"),
                    run: Callable[[dict], None] | None = None, extra_outs: tuple[str, ...] = ()) -> Stage:
    """The per-image stage `<paper>_<what>` with the project's conventions, one place for all papers:
    `results/{profile}/<paper>/<what>.csv` (rows merged in item order), `<what>_arrays/` when its items also keep
    images (runtime.arrays_dir), `<what>_availability.csv` when some items may not be here
    (replicate.pipeline.availability). `run`: a body that runs after the per-image rows and writes more
    (`extra_outs`)."""
    results = f"results/{PROFILE}/{paper}/"
    csv = results + f"{what}.csv"
    side = results + f"{what}_arrays" if arrays else None
    outs = (csv,) + ((side,) if side else ()) + ((results + f"{what}_availability.csv",) if availability else ())
    return Stage(f"{paper}_{what}", paper, run, outs=outs + tuple(extra_outs), inputs=inputs, also_reads=also_reads,
                 per_image=PerImage(rows, plan, csv, side=side, key_columns=key_columns), about=about)
