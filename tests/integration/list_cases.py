#!/usr/bin/env python3
"""list_cases.py FILE.cpp: the doctest TEST_CASEs of FILE, for meson.build.

Prints one line per case, in file order: FILTER, a tab, TITLE. FILTER is the
value of doctest's --test-case= option that selects that case and no other;
TITLE is the case's name (its string literals concatenated, escapes decoded)
with each ':' made ' -', as meson does not allow ':' in a test's name.

doctest splits the option's value at commas (a backslash escapes a comma or a
backslash) and matches each part against the whole name as a wildcard pattern
('*' any run, '?' any character, case-insensitive by default, no escape).
FILTER escapes commas and backslashes; '*' and '?' match themselves too, so a
name holding them is accepted only if its filter still matches no other case.

Fails (exit 1, saying where) when the file has no case, when it uses a form of
TEST_CASE it cannot read (a name that is not plain string literals, a macro
name such as TEST_CASE_FIXTURE or SCENARIO, an escape it does not decode), or
when two cases cannot be told apart.
"""

import re
import sys

# doctest's macros that declare cases; only TEST_CASE("literal" ...) is read.
CASE_MACROS = re.compile(r"^(DOCTEST_)?(TEST_CASE\w*|SCENARIO\w*)$")
SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}


class Error(Exception):
    pass


def tokens(text):
    """(kind, value, line) of TEXT without its comments: kind is 'ident',
    'string' (value: the literal's source, prefix and quotes included), 'char',
    'number' or 'punct' (one character). Preprocessor lines are tokens too, so
    that a macro wrapping TEST_CASE is seen (and refused)."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r\f\v\\":
            i += 1
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise Error(f"line {line}: unterminated comment")
            line += text.count("\n", i, end)
            i = end + 2
            continue
        m = re.compile(r'(?:u8|u|U|L)?R"([^()\\ \t\n]{0,16})\(').match(text, i)
        if m:
            close = ")" + m.group(1) + '"'
            end = text.find(close, m.end())
            if end < 0:
                raise Error(f"line {line}: unterminated raw string")
            yield ("string", text[i:end + len(close)], line)
            line += text.count("\n", i, end)
            i = end + len(close)
            continue
        m = re.compile(r'(?:u8|u|U|L)?(["\'])').match(text, i)
        if m:
            quote = m.group(1)
            j = m.end()
            while j < n and text[j] != quote:
                if text[j] == "\\":
                    j += 1
                if j < n and text[j] == "\n":
                    raise Error(f"line {line}: newline in a literal")
                j += 1
            if j >= n:
                raise Error(f"line {line}: unterminated literal")
            yield ("string" if quote == '"' else "char", text[i:j + 1], line)
            i = j + 1
            continue
        m = re.compile(r"[A-Za-z_]\w*").match(text, i)
        if m:
            yield ("ident", m.group(0), line)
            i = m.end()
            continue
        m = re.compile(r"[0-9](?:[\w.']|[eEpP][+-])*").match(text, i)
        if m:
            yield ("number", m.group(0), line)
            i = m.end()
            continue
        yield ("punct", c, line)
        i += 1


def decode(literal, line):
    """The value of a plain "..." literal; Error for any other kind."""
    if not literal.startswith('"'):
        raise Error(f"line {line}: cannot read the literal {literal}: only plain \"...\" "
                    "literals are supported in a TEST_CASE name")
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\":
            e = body[i + 1]
            if e not in SIMPLE_ESCAPES:
                raise Error(f"line {line}: cannot decode the escape \\{e} in {literal}")
            out.append(SIMPLE_ESCAPES[e])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cases(text):
    """[(name, line)] of the TEST_CASEs in TEXT."""
    toks = list(tokens(text))
    found = []
    for k, (kind, value, line) in enumerate(toks):
        if kind != "ident" or not CASE_MACROS.match(value):
            continue
        if value != "TEST_CASE":
            raise Error(f"line {line}: {value} is not supported (only TEST_CASE(\"name\"))")
        rest = toks[k + 1:]
        if not rest or rest[0][:2] != ("punct", "("):
            raise Error(f"line {line}: TEST_CASE not followed by '('")
        parts = []
        j = 1
        while j < len(rest) and rest[j][0] == "string":
            parts.append(decode(rest[j][1], rest[j][2]))
            j += 1
        if not parts:
            raise Error(f"line {line}: the TEST_CASE's name is not a string literal")
        if j >= len(rest) or rest[j][:2] != ("punct", ")"):
            got = rest[j][1] if j < len(rest) else "end of file"
            raise Error(f"line {line}: TEST_CASE(\"...\" followed by {got!r}, not ')' "
                        "(decorators are not supported)")
        found.append(("".join(parts), line))
    return found


def title_of(name):
    return name.replace(": ", " - ").replace(":", " - ")


def filter_of(name):
    return name.replace("\\", "\\\\").replace(",", "\\,")


def doctest_split(value):
    """doctest's parseCommaSepArgs on VALUE (doctest 2.4)."""
    res, cur, seen_backslash = [], [], False
    for ch in value:
        if seen_backslash:
            seen_backslash = False
            if ch in ",\\":
                cur.append(ch)
                continue
            cur.append("\\")
        if ch == "\\":
            seen_backslash = True
        elif ch == ",":
            if cur:
                res.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if seen_backslash:
        cur.append("\\")
    if cur:
        res.append("".join(cur))
    return res


def wildmatch(name, pattern):
    """doctest's wildcmp, case-insensitive: PATTERN matches the whole NAME."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.DOTALL | re.IGNORECASE) is not None


def main(argv):
    if len(argv) != 2:
        print("usage: list_cases.py FILE.cpp", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            found = cases(f.read())
        if not found:
            raise Error("no TEST_CASE found")
        names = [n for n, _ in found]
        for name, line in found:
            if not name.strip():
                raise Error(f"line {line}: an empty TEST_CASE name")
            if any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise Error(f"line {line}: a control character in the TEST_CASE name {name!r}")
            if names.count(name) > 1:
                raise Error(f"line {line}: two TEST_CASEs are named {name!r}")
            parts = doctest_split(filter_of(name))
            if parts != [name]:
                raise Error(f"line {line}: cannot escape {name!r} for --test-case")
            if [title_of(n) for n in names].count(title_of(name)) > 1:
                raise Error(f"line {line}: two TEST_CASEs have the title {title_of(name)!r}")
            matched = [n for n in names if wildmatch(n, name)]
            if matched != [name]:
                raise Error(f"line {line}: --test-case for {name!r} would also select "
                            f"{[n for n in matched if n != name]!r}")
    except (Error, OSError, UnicodeDecodeError) as e:
        print(f"list_cases.py: {path}: {e}", file=sys.stderr)
        return 1
    for name, _ in found:
        print(f"{filter_of(name)}\t{title_of(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
