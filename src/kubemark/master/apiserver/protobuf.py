"""Kubernetes protobuf request bodies -> the JSON dicts a JSON body would give.

client-go (and so kubectl) sends ``application/vnd.kubernetes.protobuf``
bodies for built-in kinds.  The wire form is the magic ``k8s\\x00`` followed
by a ``runtime.Unknown`` {1: typeMeta {1: apiVersion, 2: kind}, 2: raw,
3: contentEncoding, 4: contentType}, where ``raw`` is the object's own
generated message.  This module is a small table-driven protobuf decoder (no
protobuf dependency): the table ``protobuf_schema.json`` is derived from the
upstream ``generated.proto`` files by ``tools/protobuf_schema_gen.py``.

JSON mapping follows Go's encoding/json of the API types: metav1.Time ->
RFC3339 seconds, MicroTime -> 6 fraction digits, Duration -> Go duration
string, Quantity -> its string, IntOrString -> int or str, bytes -> base64,
FieldsV1 -> its raw JSON value, embedded (inline) structs are flattened.
gogo-protobuf always encodes non-pointer scalars, so zero scalars are dropped
(``omitempty``) unless the table marks the field as a pointer ("keep").
Unknown field numbers are skipped, as newer clients may send newer fields.

``encode_protobuf_object`` is the inverse (used by tests and usable for a
protobuf response path).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubemark import codec

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_TIME = _META + "Time"
_MICROTIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDSV1 = _META + "FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INTORSTRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAWEXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# Kinds every group version accepts (registered with AddToGroupVersion).
_GENERIC_KINDS = {"DeleteOptions": _META + "DeleteOptions", "Status": _META + "Status"}

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_WIRE_OF = {
    "string": _LEN,
    "bytes": _LEN,
    "bool": _VARINT,
    "int32": _VARINT,
    "int64": _VARINT,
    "uint32": _VARINT,
    "uint64": _VARINT,
    "sint32": _VARINT,
    "sint64": _VARINT,
    "fixed32": _I32,
    "sfixed32": _I32,
    "float": _I32,
    "fixed64": _I64,
    "sfixed64": _I64,
    "double": _I64,
}
_ZERO = (0, "", False, 0.0)


class ProtobufDecodeError(ValueError):
    """A protobuf body that is malformed or of a kind we have no schema for."""


# Field tuple: (json name, label "o"/"r"/"m", type, keep zero, inline).
_Field = tuple[str, str, str, bool, bool]


class _Schema:
    """The compiled table: read-only after construction."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.kinds: dict[str, str] = table["kinds"]
        self.messages: dict[str, dict[int, _Field]] = {}
        self.by_name: dict[str, dict[str, tuple[int, _Field]]] = {}
        for name, fields in table["messages"].items():
            compiled: dict[int, _Field] = {}
            for number, (json_name, label, type_name, flags) in fields.items():
                compiled[int(number)] = (json_name, label, type_name, "k" in flags, "i" in flags)
            self.messages[name] = compiled
            self.by_name[name] = {f[0]: (n, f) for n, f in compiled.items()}

    def message_for(self, api_version: str, kind: str) -> str:
        found = self.kinds.get(f"{api_version}/{kind}") or _GENERIC_KINDS.get(kind)
        if found is None:
            raise ProtobufDecodeError(f"no protobuf schema for {api_version}, Kind={kind}")
        return found


@functools.cache
def _schema() -> _Schema:
    path = Path(__file__).with_name("protobuf_schema.json")
    return _Schema(codec.loads(path.read_bytes()))


# ---------------------------------------------------------------- decoding


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufDecodeError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufDecodeError("varint too long")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def _scalar_from_varint(type_name: str, v: int) -> Any:
    if type_name == "bool":
        return v != 0
    if type_name in ("int64", "int32"):
        v = _signed64(v)
        return v - (1 << 32) if type_name == "int32" and v >= (1 << 31) else v
    if type_name in ("sint32", "sint64"):
        return (v >> 1) ^ -(v & 1)
    if type_name == "uint32":
        return v & 0xFFFFFFFF
    return v


def _scalar_from_fixed(type_name: str, raw: bytes) -> Any:
    fmt = {"fixed32": "<I", "sfixed32": "<i", "float": "<f", "fixed64": "<Q", "sfixed64": "<q"}
    return struct.unpack(fmt.get(type_name, "<d"), raw)[0]


def _text(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtobufDecodeError(f"invalid UTF-8 in string field: {err}") from None


def _timestamp(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    if start == end:
        return None  # Go marshals the zero time as an empty message -> JSON null
    fields = _raw_fields(data, start, end)
    return _signed64(fields.get(1, 0)), _signed64(fields.get(2, 0))


def _raw_fields(data: bytes, start: int, end: int) -> dict[int, Any]:
    """Last-wins {field number: varint value or (start, end) span} of a message."""
    out: dict[int, Any] = {}
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            out[number], pos = _varint(data, pos, end)
        elif wire == _LEN:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise ProtobufDecodeError("length-delimited field overruns its message")
            out[number] = (pos, pos + length)
            pos += length
        else:
            pos = _skip(data, pos, end, wire)
    return out


def _skip(data: bytes, pos: int, end: int, wire: int) -> int:
    if wire == _VARINT:
        return _varint(data, pos, end)[1]
    if wire == _I64:
        pos += 8
    elif wire == _I32:
        pos += 4
    elif wire == _LEN:
        length, pos = _varint(data, pos, end)
        pos += length
    else:
        raise ProtobufDecodeError(f"unsupported wire type {wire}")
    if pos > end:
        raise ProtobufDecodeError("field overruns its message")
    return pos


def _utc(seconds: int, micros: int) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + dt.timedelta(seconds=seconds, microseconds=micros)


def _decode_time(data: bytes, start: int, end: int) -> str | None:
    ts = _timestamp(data, start, end)
    if ts is None:
        return None
    return _utc(ts[0], 0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_microtime(data: bytes, start: int, end: int) -> str | None:
    ts = _timestamp(data, start, end)
    if ts is None:
        return None
    return _utc(ts[0], ts[1] // 1000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(nanos: int) -> str:
    """Go's time.Duration.String()."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= scale:
                return sign + _fraction(n, scale) + unit
    hours, rem = divmod(n, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _fraction(rem, 1_000_000_000) + "s"


def _fraction(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _decode_duration(data: bytes, start: int, end: int) -> str:
    return go_duration(_signed64(_raw_fields(data, start, end).get(1, 0)))


def _decode_quantity(data: bytes, start: int, end: int) -> str:
    span = _raw_fields(data, start, end).get(1)
    return _text(data, *span) if span else "0"


def _decode_intorstring(data: bytes, start: int, end: int) -> int | str:
    fields = _raw_fields(data, start, end)
    if fields.get(1, 0) == 1:
        span = fields.get(3)
        return _text(data, *span) if span else ""
    return _scalar_from_varint("int32", fields.get(2, 0))


def _decode_raw_json(data: bytes, start: int, end: int) -> Any:
    span = _raw_fields(data, start, end).get(1)
    if not span or span[0] == span[1]:
        return {}
    try:
        return codec.loads(data[span[0] : span[1]])
    except codec.JSONDecodeError as err:
        raise ProtobufDecodeError(f"embedded JSON is invalid: {err}") from None


_SPECIAL: dict[str, Callable[[bytes, int, int], Any]] = {
    _TIME: _decode_time,
    _MICROTIME: _decode_microtime,
    _DURATION: _decode_duration,
    _QUANTITY: _decode_quantity,
    _INTORSTRING: _decode_intorstring,
    _FIELDSV1: _decode_raw_json,
    _RAWEXTENSION: _decode_raw_json,
}


class _Decoder:
    """Walks a message span with the schema; one instance per body."""

    def __init__(self, schema: _Schema, data: bytes) -> None:
        self.schema = schema
        self.data = data

    def value(self, type_name: str, start: int, end: int) -> Any:
        special = _SPECIAL.get(type_name)
        if special is not None:
            return special(self.data, start, end)
        return self.message(type_name, start, end)

    def len_value(self, type_name: str, start: int, end: int) -> Any:
        if type_name == "string":
            return _text(self.data, start, end)
        if type_name == "bytes":
            return base64.b64encode(self.data[start:end]).decode("ascii")
        return self.value(type_name, start, end)

    def message(self, name: str, start: int, end: int) -> dict[str, Any]:
        fields = self.schema.messages[name]
        data = self.data
        out: dict[str, Any] = {}
        pos = start
        while pos < end:
            key = data[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _varint(data, pos, end)
            number, wire = key >> 3, key & 7
            field = fields.get(number)
            if field is None:
                pos = _skip(data, pos, end, wire)
                continue
            json_name, label, type_name, keep, inline = field
            if wire == _LEN:
                length = data[pos]
                if length < 0x80:
                    pos += 1
                else:
                    length, pos = _varint(data, pos, end)
                stop = pos + length
                if stop > end:
                    raise ProtobufDecodeError(f"field {json_name} overruns its message")
                if label == "o":
                    if type_name in _WIRE_OF and type_name not in ("string", "bytes"):
                        raise ProtobufDecodeError(f"field {json_name}: unexpected length-delimited value")
                    value = self.len_value(type_name, pos, stop)
                    if inline:
                        out.update(value)
                    elif keep or type_name not in ("string", "bytes") or value:
                        out[json_name] = value
                elif label == "r":
                    items = out.setdefault(json_name, [])
                    if _WIRE_OF.get(type_name, _LEN) != _LEN:
                        items.extend(self.packed(type_name, pos, stop))
                    else:
                        items.append(self.len_value(type_name, pos, stop))
                else:
                    entry = _raw_fields(data, pos, stop)
                    key_span, value_span = entry.get(1), entry.get(2)
                    map_key = _text(data, *key_span) if key_span else ""
                    if value_span is None:
                        value_span = (stop, stop)
                    out.setdefault(json_name, {})[map_key] = self.len_value(type_name, *value_span)
                pos = stop
                continue
            expected = _WIRE_OF.get(type_name)
            if expected != wire:
                raise ProtobufDecodeError(f"field {json_name}: wire type {wire} does not match {type_name}")
            if wire == _VARINT:
                raw, pos = _varint(data, pos, end)
                value = _scalar_from_varint(type_name, raw)
            else:
                size = 8 if wire == _I64 else 4
                if pos + size > end:
                    raise ProtobufDecodeError(f"field {json_name} overruns its message")
                value = _scalar_from_fixed(type_name, data[pos : pos + size])
                pos += size
            if label == "r":
                out.setdefault(json_name, []).append(value)
            elif keep or value not in _ZERO or value is True:
                out[json_name] = value
        return out

    def packed(self, type_name: str, start: int, end: int) -> list[Any]:
        values: list[Any] = []
        pos = start
        wire = _WIRE_OF[type_name]
        while pos < end:
            if wire == _VARINT:
                raw, pos = _varint(self.data, pos, end)
                values.append(_scalar_from_varint(type_name, raw))
            else:
                size = 8 if wire == _I64 else 4
                if pos + size > end:
                    raise ProtobufDecodeError("packed field overruns its message")
                values.append(_scalar_from_fixed(type_name, self.data[pos : pos + size]))
                pos += size
        return values


def decode_protobuf_body(data: bytes) -> dict[str, Any]:
    """Decode a ``application/vnd.kubernetes.protobuf`` body into its JSON dict.

    The result carries ``apiVersion`` and ``kind`` from the envelope.  Raises
    ProtobufDecodeError on malformed input or a kind without a schema.
    """
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise ProtobufDecodeError("protobuf body does not start with the k8s\\x00 magic")
    try:
        envelope = _raw_fields(data, len(MAGIC), len(data))
        type_span = envelope.get(1)
        type_meta = _raw_fields(data, *type_span) if type_span else {}
        api_version = _text(data, *type_meta[1]) if 1 in type_meta else ""
        kind = _text(data, *type_meta[2]) if 2 in type_meta else ""
        for number, label in ((3, "contentEncoding"), (4, "contentType")):
            span = envelope.get(number)
            value = _text(data, *span) if span else ""
            if value and not (number == 4 and value == PROTOBUF_CONTENT_TYPE):
                raise ProtobufDecodeError(f"unsupported {label} {value!r} in protobuf envelope")
        if not kind:
            raise ProtobufDecodeError("protobuf envelope has no kind")
        schema = _schema()
        message = schema.message_for(api_version, kind)
        raw = envelope.get(2, (len(data), len(data)))
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
        obj.update(_Decoder(schema, data).message(message, raw[0], raw[1]))
        return obj
    except (IndexError, TypeError, struct.error) as err:
        raise ProtobufDecodeError(f"malformed protobuf body: {err}") from None


# ---------------------------------------------------------------- encoding


def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_len(out: bytearray, number: int, payload: bytes) -> None:
    _put_varint(out, number << 3 | _LEN)
    _put_varint(out, len(payload))
    out += payload


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def _parse_time(value: str) -> tuple[int, int]:
    m = _RFC3339.match(value)
    if m is None:
        raise ValueError(f"not an RFC3339 time: {value!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    moment = dt.datetime.fromisoformat(m.group(1) + zone)
    return int(moment.timestamp()), int((m.group(2) or "0").ljust(9, "0"))


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(h|m|s|ms|us|µs|ns)")
_UNIT_NANOS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1}


def _parse_duration(value: str) -> int:
    sign = -1 if value.startswith("-") else 1
    body = value.lstrip("+-")
    if body == "0":
        return 0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"not a Go duration: {value!r}")
    return sign * round(sum(float(n) * _UNIT_NANOS[u] for n, u in parts))


def _encode_special(type_name: str, value: Any) -> bytes | None:
    out = bytearray()
    if type_name in (_TIME, _MICROTIME):
        if value is None:
            return b""
        seconds, nanos = _parse_time(value)
        _put_varint(out, 1 << 3)
        _put_varint(out, seconds)
        if nanos:
            _put_varint(out, 2 << 3)
            _put_varint(out, nanos)
    elif type_name == _DURATION:
        _put_varint(out, 1 << 3)
        _put_varint(out, _parse_duration(value))
    elif type_name == _QUANTITY:
        _put_len(out, 1, str(value).encode())
    elif type_name == _INTORSTRING:
        if isinstance(value, str):
            _put_varint(out, 1 << 3)
            _put_varint(out, 1)
            _put_len(out, 3, value.encode())
        else:
            _put_varint(out, 1 << 3)
            _put_varint(out, 0)
            _put_varint(out, 2 << 3)
            _put_varint(out, int(value))
    elif type_name in (_FIELDSV1, _RAWEXTENSION):
        _put_len(out, 1, codec.dumps(value))
    else:
        return None
    return bytes(out)


def _encode_scalar(out: bytearray, number: int, type_name: str, value: Any) -> None:
    wire = _WIRE_OF[type_name]
    if wire == _LEN:
        payload = base64.b64decode(value) if type_name == "bytes" else str(value).encode()
        _put_len(out, number, payload)
        return
    _put_varint(out, number << 3 | wire)
    if wire == _VARINT:
        if type_name in ("sint32", "sint64"):
            value = (value << 1) ^ (value >> 63)
        _put_varint(out, int(value))
    else:
        fmt = {"fixed32": "<I", "sfixed32": "<i", "float": "<f", "fixed64": "<Q", "sfixed64": "<q"}
        out += struct.pack(fmt.get(type_name, "<d"), value)


def _encode_value(schema: _Schema, out: bytearray, number: int, type_name: str, value: Any) -> None:
    if type_name in _WIRE_OF:
        _encode_scalar(out, number, type_name, value)
        return
    special = _encode_special(type_name, value)
    payload = special if special is not None else _encode_message(schema, type_name, value)
    _put_len(out, number, payload)


def _encode_message(schema: _Schema, name: str, obj: dict[str, Any]) -> bytes:
    out = bytearray()
    fields = schema.messages[name]
    for number in sorted(fields):
        json_name, label, type_name, _keep, inline = fields[number]
        if inline:
            _put_len(out, number, _encode_message(schema, type_name, obj))
            continue
        if json_name not in obj:
            continue
        value = obj[json_name]
        if label == "r":
            for item in value:
                _encode_value(schema, out, number, type_name, item)
        elif label == "m":
            for map_key, map_value in value.items():
                entry = bytearray()
                _put_len(entry, 1, str(map_key).encode())
                _encode_value(schema, entry, 2, type_name, map_value)
                _put_len(out, number, bytes(entry))
        else:
            _encode_value(schema, out, number, type_name, value)
    return bytes(out)


def encode_protobuf_object(obj: dict[str, Any]) -> bytes:
    """Encode a JSON-form object (with apiVersion and kind) as a k8s protobuf body."""
    schema = _schema()
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    try:
        message = schema.message_for(api_version, kind)
        raw = _encode_message(schema, message, obj)
    except (binascii.Error, ValueError, TypeError, AttributeError) as err:
        if isinstance(err, ProtobufDecodeError):
            raise
        raise ValueError(f"cannot encode {api_version}/{kind} as protobuf: {err}") from err
    type_meta = bytearray()
    _put_len(type_meta, 1, api_version.encode())
    _put_len(type_meta, 2, kind.encode())
    envelope = bytearray(MAGIC)
    _put_len(envelope, 1, bytes(type_meta))
    _put_len(envelope, 2, raw)
    _put_len(envelope, 3, b"")
    _put_len(envelope, 4, b"")
    return bytes(envelope)
