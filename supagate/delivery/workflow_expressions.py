"""What a GitHub workflow's `${{ }}` expressions read from the `secrets` and `vars` contexts,
parsed the way the runner parses them (actions/runner TemplateReader and ExpressionParser):

- an expression ends at the first `}}` outside a single-quoted string, so
  `${{ format('}}', secrets.X) }}` is one expression;
- context names and property names are case-insensitive (`Secrets.X`, `SECRETS['x']`), and
  so are secret and variable names (GitHub stores them upper-case);
- a string literal is never a context (`'secrets'` reads nothing).

A context used any other way than `.NAME` or `['NAME']` (`toJSON(secrets)`, `secrets[format(..)]`,
`secrets.*`) reads EVERY: the audit cannot tell which names, so it assumes all.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

EVERY = "every secret"
OPEN = "${{"
# A string literal ('' escapes a quote), an identifier (GitHub allows '-' after the first
# character), or any other single character.
TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)|(?P<other>\S))")


def expressions(text: str) -> Iterator[str]:
    """The body of each `${{ }}` in `text`; an unclosed one runs to the end (the runner
    refuses the file, and the audit still reads what it would have read)."""
    start = text.find(OPEN)
    while start != -1:
        i, in_string = start + len(OPEN), False
        while i < len(text):
            if text[i] == "'":
                in_string = not in_string
            elif not in_string and text[i] == "}" and text[i - 1] == "}" and i - 1 >= start + len(OPEN):
                break
            i += 1
        yield text[start + len(OPEN):i - 1] if i < len(text) else text[start + len(OPEN):]
        start = text.find(OPEN, i + 1)


def _tokens(expression: str) -> list[tuple[str, str]]:
    found = []
    for match in TOKEN.finditer(expression):
        kind = match.lastgroup
        if kind:
            found.append((kind, match.group(kind)))
    return found


def reads(expression: str, context: str) -> set[str]:
    """The names `expression` reads from `context` (upper-case), or {EVERY}."""
    tokens, names = _tokens(expression), set()
    for i, (kind, value) in enumerate(tokens):
        if kind != "ident" or value.lower() != context or (i and tokens[i - 1] == ("other", ".")):
            continue  # not the context itself (`github.secrets` is a property of github)
        after = tokens[i + 1:i + 4]
        if len(after) >= 2 and after[0] == ("other", ".") and after[1][0] == "ident":
            names.add(after[1][1].upper())
        elif len(after) == 3 and after[0] == ("other", "[") and after[1][0] == "string" and after[2] == ("other", "]"):
            names.add(after[1][1][1:-1].replace("''", "'").upper())
        else:
            names.add(EVERY)
    return names


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed YAML value, mapping keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def context_reads(value: Any, context: str) -> set[str]:
    """What every expression anywhere in `value` reads from `context`."""
    return {name for text in strings(value) for body in expressions(text) for name in reads(body, context)}


def is_only(text: Any, context: str, name: str) -> bool:
    """`text` is exactly `${{ <context>.<name> }}` (any case), nothing around it."""
    if not isinstance(text, str) or not text.strip().startswith(OPEN):
        return False
    bodies = list(expressions(text.strip()))
    if len(bodies) != 1 or not text.strip().endswith("}}"):
        return False
    tokens = _tokens(bodies[0])
    return len(tokens) == 3 and tokens[0][1].lower() == context and tokens[1] == ("other", ".") \
        and tokens[2][0] == "ident" and tokens[2][1].upper() == name
