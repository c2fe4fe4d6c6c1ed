"""How a params section's schema is written: pydantic models that forbid unknown keys, and `validator(Model)`.

    class Train(Block):
        patch: int
        epochs: float = 70
    class Section(Block):
        train: Train
    validate = validator(Section)

`validate(merged, where)` checks the merged section of one profile and returns it unchanged (the stages read exactly
what params.yaml says); a mistake raises one ParamsError line that names the file, section, profile and key:

    params.yaml: mohan2020 (mini): train.rate: unknown key (known: batch, epochs, ...)
    params.yaml: kawar2021 (mini): n_samples: expected an integer, got 'two'
    params.yaml: chung2023 (paper): steps.dps: missing
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from replicate.params import ParamsError


class Block(BaseModel):
    """A mapping of params.yaml: unknown keys are errors; numbers are not coerced from strings."""
    model_config = ConfigDict(extra="forbid", strict=False, protected_namespaces=())


class Open(BaseModel):
    """A mapping whose keys are free (e.g. an operator's keyword arguments, checked where it is built)."""
    model_config = ConfigDict(extra="allow", protected_namespaces=())


# the keys params.load adds to every section (not written in params.yaml)
RESOLVED = {"subset", "not_run_on_cpu"}
# keys every section may hold (runtime.device reads `device`: auto | cpu | cuda | cuda:<n>)
COMMON_KEYS = {"device"}


def _check_common(merged: dict) -> str | None:
    device = merged.get("device", "auto")
    ok = isinstance(device, str) and (device in ("auto", "cpu", "cuda") or
                                      (device.startswith("cuda:") and device[5:].isdigit()))
    return None if ok else f"device: expected auto, cpu, cuda or cuda:<n>, got {device!r}"


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (X, X | None, list[X], dict[str, X]), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _message(err: dict, model: type[BaseModel], data: Any) -> str:
    loc = ".".join(str(x) for x in err["loc"])
    kind, got = err["type"], err.get("input")
    if kind == "extra_forbidden":
        parent = model
        for part in err["loc"][:-1]:
            if isinstance(part, int) or parent is None:   # a list index, or past what we can follow
                continue
            field = parent.model_fields.get(str(part))
            parent = _model_in(getattr(field, "annotation", None)) if field is not None else _model_in(parent)
        known = f" (known: {', '.join(sorted(parent.model_fields))})" if parent is not None else ""
        return f"{loc}: unknown key{known}"
    if kind == "missing":
        return f"{loc}: missing"
    return f"{loc}: {err['msg'].lower()}, got {got!r}"


def validator(model: type[BaseModel]):
    def validate(merged: dict, where: str) -> dict:
        bad = _check_common(merged)
        if bad:
            raise ParamsError(f"{where}: {bad}")
        data = {k: v for k, v in merged.items() if k not in RESOLVED | COMMON_KEYS}
        try:
            model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ParamsError(f"{where}: {_message(errors[0], model, data)}{more}") from None
        return merged
    return validate


class ImageSet(Block):
    """An image set (replicate.data.load_set): its source and how it is cut; papers add their own keys."""
    source: str
    crop: int | None = None
    limit: int | None = None
    multiple: int | None = None
    gray: bool | None = None
    square: int | None = None          # central square resized to this side (kawar2021)
    prior: str | None = None           # the prior that runs on this set (kadkhodaie2021, chung2023)
    asset_set: str | None = None       # the registry set holding its files (chung2023's paper sets)
