"""Config keys matched as Go's encoding/json matches them: exactly, else ignoring case (clusterloader2's configs
write e.g. `RandomizedTimeLimitedLoad` for `randomizedTimeLimitedLoad`); for pydantic models' before-validators."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["fold_keys"]


def fold_keys(model: type[BaseModel], data: Any) -> Any:
    """Rename keys that match a field only ignoring case to the field's alias, as Go's encoding/json matches
    them (clusterloader2's configs write e.g. `RandomizedTimeLimitedLoad`)."""
    if not isinstance(data, dict):
        return data
    names: dict[str, str] = {}
    for field_name, info in model.model_fields.items():
        alias = info.alias or field_name
        names.setdefault(alias.casefold(), alias)
        names.setdefault(field_name.casefold(), alias)
    known = set(names.values()) | set(model.model_fields)
    out: dict[Any, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key not in known:
            target = names.get(key.casefold())
            if target is not None and target not in data:
                out[target] = value
                continue
        out[key] = value
    return out
