"""Foundation stages: what external files this checkout can reach (mirror / cache), per asset set."""
from __future__ import annotations

from collections import Counter

from replicate import runtime
from replicate.markdown import markdown_table, write_markdown
from replicate.pipeline.stage import Stage


def stage_assets(prm: dict) -> None:
    """The assets stage: tables/<profile>/foundation/assets.md, every registered set with whether this machine can
    have it. Under the dryrun profile it first generates the stand-ins (skipped when they are up to date), so that
    `dvc exp run -S profile=dryrun` needs nothing else."""
    import pandas as pd

    from replicate.assets.registry import availability, load_registry
    from replicate.params import is_dryrun

    if is_dryrun(prm):
        from replicate.pipeline.standins import generate

        generate()

    registry = load_registry()
    counts = Counter(a.set for a in registry.values())
    rows = []
    for set_name in sorted(counts):
        ok, reason = availability(set_name)
        sample = next(a for a in registry.values() if a.set == set_name)
        rows.append({"set": set_name, "files": counts[set_name], "available here": "yes" if ok else "no",
                     "hash": sample.hash_source, "why not": "" if ok else reason.splitlines()[0][:140]})
    body = ("Every external file the project can use, by set, and whether this checkout can reach it without the "
            "network (download cache or mirror). `hash`: published = sha256 known in advance; prefix = only the "
            "8-hex prefix the publisher embeds in the file name; recorded = no published hash, recorded on first "
            "download and enforced afterwards.\n\n" + markdown_table(pd.DataFrame(rows)))
    write_markdown(runtime.tables_dir(prm, "foundation") / "assets.md", "Assets and their availability", body)


STAGES = [
    Stage("foundation_assets", "foundation", stage_assets, outs=("tables/{profile}/foundation/assets.md",),
          about="which external files (test sets, weights, metric networks) this checkout can reach"),
]
