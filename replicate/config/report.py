"""Schema of params.yaml's `report` section (no parameters yet; see replicate/config/_schema.py)."""
from __future__ import annotations

from replicate.config._schema import Block, validator


class Section(Block):
    """The `report` section of params.yaml (empty: the report reads results and manifests only)."""


validate = validator(Section)
