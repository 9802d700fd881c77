"""clusterloader2's CL2_* environment parameters: every `CL2_X=value` variable is template parameter `.CL2_X`.

As clusterloader2's `LoadCL2Envs`: the value becomes an int if Go's `strconv.ParseInt(v, 10, 64)` takes it, else a
float if `ParseFloat` does, else a bool if `ParseBool` does, else it stays a string; a variable whose text holds a
second `=` is an error (clusterloader2 splits on every `=`). The parameters only fill names the override files and
`--set` left unset (clusterloader2's `MergeMappings` keeps the existing value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["CL2_PREFIX", "EnvParamError", "cl2_env_params", "parse_env_value"]

CL2_PREFIX = "CL2_"

_INT = re.compile(r"[+-]?[0-9]+")
# Go's ParseFloat: decimal with optional exponent, hex floats, inf/infinity/nan in any case, "_" only between
# digits of a prefixed (hex) literal; the decimal forms are what configs use.
_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)
_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class EnvParamError(ValueError):
    """A CL2_* variable clusterloader2 would refuse."""


def parse_env_value(text: str) -> Any:
    """int, float, bool or str, in clusterloader2's order (so "1" is the int 1, not True)."""
    if _INT.fullmatch(text):
        value = int(text)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
    if _FLOAT.fullmatch(text):
        return float(text)
    if _HEX_FLOAT.fullmatch(text):
        return float.fromhex(text)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return text


def cl2_env_params(environ: Mapping[str, str]) -> dict[str, Any]:
    """The template parameters of the CL2_* variables in `environ` (e.g. os.environ)."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(CL2_PREFIX):
            continue
        if "=" in value:
            raise EnvParamError(f'unparsable environment variable {key}="{value}": clusterloader2 splits on "="')
        out[key] = parse_env_value(value)
    return out
