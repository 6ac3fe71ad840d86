#!/usr/bin/env python3
"""Writes the fuzz seed corpora (Tests/Fuzz/Corpus/<target>/) from the unit tests' string literals and
fixtures, the conformance suite's publish bodies (when ../shared/conformance is present) and a few hand-made
inputs. Run it again after adding tests; the corpora are committed, so CI does not need it."""

import ast
import hashlib
import warnings
import json
import pathlib
import re
import shutil

warnings.simplefilter("ignore", DeprecationWarning)
root = pathlib.Path(__file__).resolve().parents[2]
corpus = root / "Tests/Fuzz/Corpus"
seeds: dict[str, set[bytes]] = {}


def add(target: str, data: bytes) -> None:
    if 0 < len(data) <= 4096:
        seeds.setdefault(target, set()).add(data)


def swift_literals(text: str) -> list[str]:
    """The string literals of a Swift file, raw (#"..."#) and plain, without interpolations."""
    found = [m for m in re.findall(r'#"(.*?)"#', text) if "\\#(" not in m]
    for m in re.findall(r'(?<![#\w])"((?:[^"\\\n]|\\.)*)"', text):
        if "\\(" in m:
            continue
        try:
            found.append(m.encode().decode("unicode_escape").encode("latin-1").decode("utf-8"))
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
    return found


def route_json(value: str) -> None:
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    data = value.encode()
    add("json", data)
    if isinstance(parsed, dict):
        if "items" in parsed or "formats" in parsed or "channel" in parsed:
            add("publish-json", data)
        if "hold" in parsed or "response" in parsed:
            add("instruct-json", data)
        if "type" in parsed:
            add("ws-control", data)


tests = root / "Tests"
for path in tests.rglob("*.swift"):
    text = path.read_text()
    for literal in swift_literals(text):
        route_json(literal)
        if literal.startswith("c:"):
            route_json(literal[2:])
        if re.match(r"^\d+:", literal):
            add("tnetstring", literal.encode())
            add("publish-tnetstring", literal.encode())
        if path.name == "WebSocketEventTests.swift" and "\r\n" in literal:
            add("ws-events", literal.encode())
        if path.name == "RouteTableTests.swift":
            add("routes", literal.encode())
        if path.name == "P8ConfigurationTests.swift" and "=" in literal:
            add("config", literal.encode())
    if path.name.startswith("Instruct"):
        # Each line's ("Name", "value") pairs make one response's headers.
        for line in text.splitlines():
            pairs = re.findall(r'\("([A-Za-z-]+)", #?"((?:[^"\\]|\\.)*)"#?\)', line)
            if pairs:
                add("instruct-headers", "".join(f"{n}: {v}\n" for n, v in pairs).encode() + b"\nbody")

for fixture in (tests / "GRIPTests/Fixtures").iterdir():
    target = "routes" if fixture.suffix == ".routes" else "config"
    add(target, fixture.read_bytes())

conformance = root.parent / "shared/conformance"
if conformance.is_dir():
    for path in conformance.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                try:
                    value = ast.literal_eval(node)
                    route_json(json.dumps(value))
                except (ValueError, TypeError, SyntaxError):
                    continue

for event in [b"OPEN\r\n", b"TEXT 5\r\nhello\r\n", b"BINARY 2\r\n\x00\xff\r\nPING\r\n",
              b"CLOSE 7\r\n\x03\xe8 bye\r\n", b"DISCONNECT\r\n", b"PONG 3\r\nabc\r\n"]:
    add("ws-events", event)
for tnet in [b"59:7:channel,4:news,7:formats,30:11:http-stream,12:7:content,2:hi,}}}",
             b"1:0~", b"4:true!", b"8:1:a,1:b,]"]:
    add("tnetstring", tnet)
    add("publish-tnetstring", tnet)
add("publish-tnetstring", b'J{"channel":"news","formats":{"ws-message":{"content":"hi"}}}')
add("publish-tnetstring", b"T59:7:channel,4:news,7:formats,30:11:http-stream,12:7:content,2:hi,}}}")
for token in ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE5MDAwMDAwMDAsImlzcyI6InBwIn0.x",
              "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30."]:
    add("grip-sig", b"changeme\x00pushpin\x00" + token.encode())
for patch, body in [('[{"op":"add","path":"/a","value":1}]', '{"b":2}\n'),
                    ('[{"op":"remove","path":"/0"},{"op":"replace","path":"/0","value":"x"}]', '[1,2,3]'),
                    ('[{"op":"move","from":"/a","path":"/b/c"},{"op":"copy","from":"/b","path":"/d"}]',
                     '{"a":1,"b":{}}\r\n'),
                    ('[{"op":"test","path":"/a~1b/~0","value":[1]}]', '{"a/b":{"~":[1]}}'),
                    ('[{"op":"add","path":"/-","value":{}}]', '[]')]:
    add("json-patch", patch.encode() + b"\x00" + body.encode())

for argument in ["2026-11-24 21:05:03", "2026-11-24T21:05:03Z", "2026-11-24T21:05:03.120+02:00",
                 "2026-11-24", "15m", "7d", "90s", "2w", " 2h ", "2026-02-29", "2024-02-29T23:59:59z"]:
    add("ctl-time", argument.encode())
# Found by fuzzing: year 0000 (1 BC) with a fraction that rounds up to the next second.
add("ctl-time", b"0000-11-14T10:05:23." + b"9" * 32 + b"0000000000788630655921432471")

shutil.rmtree(corpus, ignore_errors=True)
for target, inputs in sorted(seeds.items()):
    folder = corpus / target
    folder.mkdir(parents=True)
    for data in inputs:
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    print(f"{target}: {len(inputs)} seeds")
