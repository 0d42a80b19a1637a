"""Values between Python and the text form libpq speaks: SQL literals bound on the
client (the engine's own queries only; a migration file's SQL is sent as written), and
the server's text output of the types the engine reads back."""

from __future__ import annotations


def literal(value) -> str:
    """`value` as an SQL literal. E'' strings quote correctly whatever
    standard_conforming_strings says; the connection is UTF-8, where no multibyte
    character contains a quote or backslash byte."""
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
        if "\\" in value:
            return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, str) or item is None for item in value):
            raise TypeError("only lists of text are bound by the migration engine's connection")
        return "ARRAY[" + ",".join(literal(item) for item in value) + "]::text[]" if value else "'{}'::text[]"
    raise TypeError(f"cannot bind a {type(value).__name__} value")


def identifier(*parts: str) -> str:
    """A (schema-qualified) name, quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def bind(query: str, params=()) -> str:
    """`query` with each %s replaced by the literal of the next parameter (%% is a %)."""
    if not params:
        return query
    pieces = query.split("%")
    out, values, i = [pieces[0]], iter(params), 1
    while i < len(pieces):
        piece = pieces[i]
        if piece == "" and i + 1 < len(pieces):  # %%
            out.append("%" + pieces[i + 1])
            i += 2
            continue
        if not piece.startswith("s"):
            raise ValueError(f"only %s placeholders are supported: {query[:80]!r}")
        try:
            out.append(literal(next(values)) + piece[1:])
        except StopIteration:
            raise ValueError(f"fewer parameters than placeholders in {query[:80]!r}") from None
        i += 1
    if next(values, _END) is not _END:
        raise ValueError(f"more parameters than placeholders in {query[:80]!r}")
    return "".join(out)


_END = object()


def _boolean(text: str) -> bool:
    return text == "t"


def _parse_array(text: str, convert):
    """A one-dimensional array in PostgreSQL's text output form."""
    if text.startswith("["):  # explicit bounds, "[0:1]={a,b}"
        text = text[text.index("=") + 1:]
    if text[1:2] == "{":
        raise ValueError("multi-dimensional arrays are not read by the migration engine's connection")
    items, i, end = [], 1, len(text) - 1
    while i < end:
        if text[i] == '"':
            chars, i = [], i + 1
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                chars.append(text[i])
                i += 1
            items.append(convert("".join(chars)))
            i += 1
        else:
            stop = text.find(",", i)
            stop = end if stop < 0 else stop
            word = text[i:stop]
            items.append(None if word == "NULL" else convert(word))
            i = stop
        i += 1  # the comma
    return items


_SCALARS = {16: _boolean, 20: int, 21: int, 23: int, 26: int}
_ARRAYS = {1000: _boolean, 1005: int, 1007: int, 1016: int, 1028: int, 1009: str, 1015: str, 1003: str}


def converter(oid: int):
    if oid in _SCALARS:
        return _SCALARS[oid]
    if oid in _ARRAYS:
        element = _ARRAYS[oid]
        return lambda text: _parse_array(text, element)
    return None  # text, and the text form of anything else
