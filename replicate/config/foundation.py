"""Schema of params.yaml's `foundation` section (no parameters yet; see replicate/config/_schema.py)."""
from __future__ import annotations

from replicate.config._schema import Block, validator


class Section(Block):
    pass


validate = validator(Section)
