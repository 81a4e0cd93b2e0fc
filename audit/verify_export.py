#!/usr/bin/env python3
"""Re-verifies a ledger audit export (JSON Lines) from the rule in interfaces.md alone.

hash = lowercase hex SHA-256( raw 32 bytes of prev_hash || RFC 8785 canonical JSON of the line
without prev_hash and hash ); the first event's prev_hash is 32 zero bytes. A range export is
checked from the prev_hash its first line names. Written independently of the Rust code: it
implements RFC 8785 for the JSON an export holds (objects, arrays, strings, integers, booleans,
null) and refuses anything else rather than guess.

Usage:
  verify_export.py FILE.jsonl
  ledger export | verify_export.py          (standard input, also as `-`)
Prints "ok N events, head POSITION:HASH" (compare the head with the one `ledger export` printed
and with one kept from earlier: `ledger verify --expect-head POSITION:HASH`), or the first bad
line on standard error with exit status 1.
"""
import hashlib
import io
import json
import sys


def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError("floats are not part of the ledger's export")
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        # RFC 8785 3.2.3: members sorted by their names' UTF-16 code units.
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(canonical_string(name) + ":" + canonical(value[name]) for name in names) + "}"
    raise ValueError(f"unexpected JSON value {value!r}")


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def canonical_string(text):
    out = []
    for character in text:
        if character in ESCAPES:
            out.append(ESCAPES[character])
        elif ord(character) < 0x20:
            out.append("\\u%04x" % ord(character))
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def main(lines):
    previous = None
    position = None
    count = 0
    for number, line in enumerate(lines, start=1):
        event = json.loads(line)
        stated_previous = bytes.fromhex(event["prev_hash"])
        if previous is None:
            if event["position"] == 1 and stated_previous != bytes(32):
                fail(number, "the first event's prev_hash is not 32 zero bytes")
            previous = stated_previous
        elif stated_previous != previous:
            fail(number, "prev_hash is not the previous line's hash")
        body = {name: value for name, value in event.items() if name not in ("prev_hash", "hash")}
        digest = hashlib.sha256(previous + canonical(body).encode("utf-8")).hexdigest()
        if digest != event["hash"]:
            fail(number, f"hash {event['hash']} does not match the contents ({digest})")
        previous = bytes.fromhex(digest)
        position = event["position"]
        count += 1
    head = f"{position}:{previous.hex()}" if count else "none (no events)"
    print(f"ok {count} events, head {head}")


def fail(number, reason):
    print(f"line {number}: {reason}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) > 1 or arguments[:1] in (["-h"], ["--help"]):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    if not arguments or arguments[0] == "-":
        main(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"))
    else:
        with open(arguments[0], encoding="utf-8") as lines:
            main(lines)
