# ruff: noqa: E501  (the crafted logs read best one per line)
"""The two XES readers agree: the vectorised one (lines) and expat (element by element)
give the same rows, or the same error, and hash the same content, on every layout."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from eventlab.importers import xes, xes_lines
from eventlab.importers.errors import LogImportError

from conftest import ROOT

HEAD = '<?xml version="1.0" encoding="UTF-8" ?>\n<log xes.version="1.0" xmlns="http://www.xes-standard.org/">\n\t<string key="creator" value="x"/>\n\t<global scope="event">\n\t\t<string key="concept:name" value="UNKNOWN"/>\n\t</global>\n'


def ev(name="A", time="2011-10-01T00:38:44.546+02:00", extra=""):
    """An event, one element a line."""
    text = "\t\t<event>\n"
    if name is not None:
        text += f'\t\t\t<string key="concept:name" value="{name}"/>\n'
    if time is not None:
        text += f'\t\t\t<date key="time:timestamp" value="{time}"/>\n'
    return text + extra + "\t\t</event>\n"


def tr(case="c1", events=None, extra=""):
    """A trace of ``events`` (two by default)."""
    events = events if events is not None else [ev("A"), ev("B", "2011-10-01T00:39:44.546+02:00")]
    text = "\t<trace>\n"
    if case is not None:
        text += f'\t\t<string key="concept:name" value="{case}"/>\n'
    return text + extra + "".join(events) + "\t</trace>\n"


def log(*traces, head=HEAD, tail="</log>\n"):
    return head + "".join(traces) + tail

CASES = {
 "basic": log(tr("c1"), tr("c2")),
 "entities": log(tr("c&amp;1", [ev("A&lt;b&gt;&quot;&apos;&amp;amp;", extra='\t\t\t<string key="k&amp;" value="v &quot;q&quot; &amp;lt;"/>\n')])),
 "numeric charref": log(tr("c1", [ev("A&#38;B")])),
 "backslash": log(tr("c\\1", [ev("A\\B", extra='\t\t\t<string key="p\\ath" value="C:\\dir\\"/>\n')])),
 "typed": log(tr("c1", [ev("A", extra='\t\t\t<int key="n" value="12"/>\n\t\t\t<float key="f" value="1e16"/>\n\t\t\t<float key="g" value="-0.0"/>\n\t\t\t<boolean key="b" value=" TRUE "/>\n\t\t\t<date key="d" value="2020-01-01T01:00:00+01:00"/>\n\t\t\t<id key="i" value="xyz"/>\n\t\t\t<int key="big" value="123456789012345678901234567890"/>\n\t\t\t<float key="h" value="0.1"/>\n')])),
 "nan": log(tr("c1", [ev("A", extra='\t\t\t<float key="f" value="NaN"/>\n\t\t\t<string key="s" value="x"/>\n')])),
 "nan trace": log(tr("c1", extra='\t\t<float key="f" value="nan"/>\n\t\t<int key="n" value="3"/>\n')),
 "inf": log(tr("c1", [ev("A", extra='\t\t\t<float key="f" value="1e400"/>\n')])),
 "inf trace": log(tr("c1", extra='\t\t<float key="f" value="-inf"/>\n')),
 "bad int": log(tr("c1", [ev("A", extra='\t\t\t<int key="n" value="1.5"/>\n')])),
 "bad date": log(tr("c1", [ev("A", extra='\t\t\t<date key="d" value="yesterday"/>\n')])),
 "int underscore": log(tr("c1", [ev("A", extra='\t\t\t<int key="n" value="1_000"/>\n')])),
 "dup key": log(tr("c1", [ev("A", extra='\t\t\t<string key="x" value="1"/>\n\t\t\t<string key="x" value="2"/>\n')])),
 "dup name": log(tr("c1", [ev("A", extra='\t\t\t<string key="concept:name" value="Z"/>\n')])),
 "dup trace key": log(tr("c1", extra='\t\t<string key="x" value="1"/>\n\t\t<string key="x" value="2"/>\n\t\t<string key="concept:name" value="c9"/>\n')),
 "no time": log(tr("c1", [ev("A", None), ev("B")])),
 "time as string": log(tr("c1", [ev("A", extra='')]).replace('<date key="time:timestamp"', '<string key="time:timestamp"')),
 "time as int": log(tr("c1", [ev("A", None, '\t\t\t<int key="time:timestamp" value="5"/>\n')])),
 "no activity": log(tr("c1", [ev(None)])),
 "empty activity": log(tr("c1", [ev("")])),
 "int activity": log(tr("c1", [ev(None, extra='\t\t\t<int key="concept:name" value="05"/>\n')])),
 "no case": log(tr(None)),
 "empty case": log(tr("")),
 "int case": log(tr(None, extra='\t\t<int key="concept:name" value="007"/>\n')),
 "date case": log(tr(None, extra='\t\t<date key="concept:name" value="2020-01-01"/>\n')),
 "trace attr after events": log("\t<trace>\n" + ev("A") + '\t\t<string key="concept:name" value="late"/>\n' + ev("B") + '\t\t<string key="z" value="1"/>\n\t</trace>\n'),
 "empty trace": log(tr("c0", []), tr("c1")),
 "only empty traces": log(tr("c0", [])),
 "no traces": log(),
 "crlf": log(tr("c1"), tr("c2")).replace("\n", "\r\n"),
 "lone cr": log(tr("c1"), tr("c2")).replace("\t<trace>\n", "\t<trace>\r"),
 "lone cr header": log(tr("c1")).replace('<string key="creator" value="x"/>\n', '<string key="creator" value="x"/>\r'),
 "unicode": log(tr("cé", [ev("Ä 😀 \u2028 \x7f", extra='\t\t\t<string key="ключ" value="значение"/>\n')])),
 "fffe": log(tr("c1", [ev("A\ufffeB")])),
 "ffff": log(tr("c1", [ev("A\uffffB")])),
 "control": log(tr("c1", [ev("A\x01B")])),
 "tab in value": log(tr("c1", [ev("A\tB")])),
 "space before slash": log(tr("c1")).replace('"/>', '" />'),
 "trailing spaces": log(tr("c1")).replace('/>\n', '/>  \n').replace('<event>\n', '<event> \n'),
 "single quotes": log(tr("c1")).replace('value="c1"', "value='c1'"),
 "reversed attrs": log(tr("c1")).replace('<string key="concept:name" value="A"/>', '<string value="A" key="concept:name"/>'),
 "extra attr": log(tr("c1")).replace('<string key="concept:name" value="A"/>', '<string key="concept:name" value="A" foo="1"/>'),
 "two spaces": log(tr("c1")).replace('<string key="concept:name" value="A"/>', '<string  key="concept:name" value="A"/>'),
 "list attr": log(tr("c1", [ev("A", extra='\t\t\t<list key="l">\n\t\t\t\t<values>\n\t\t\t\t\t<string key="x" value="1"/>\n\t\t\t\t</values>\n\t\t\t</list>\n')])),
 "nested attr": log(tr("c1", [ev("A", extra='\t\t\t<string key="p" value="1">\n\t\t\t\t<string key="q" value="2"/>\n\t\t\t</string>\n')])),
 "doctype": log(tr("c1"), head='<?xml version="1.0"?>\n<!DOCTYPE log [<!ATTLIST string value NMTOKEN #IMPLIED>]>\n<log>\n'),
 "doctype entity": log(tr("c1", [ev("&x;")]), head='<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY x "ex">]>\n<log>\n'),
 "latin1 decl": log(tr("caf\xe9")).encode("latin-1"),
 "latin1 decl ascii": log(tr("c1")).replace("UTF-8", "ISO-8859-1"),
 "utf16": log(tr("c1")).replace("UTF-8", "UTF-16").encode("utf-16"),
 "no decl": log(tr("c1"), head="<log>\n"),
 "bom": b"\xef\xbb\xbf" + log(tr("c1")).encode(),
 "prefixed": log(tr("c1")).replace("<log ", "<xes:log xmlns:xes='u' ").replace("</log>", "</xes:log>"),
 "prefixed trace": log(tr("c1")).replace("<trace>", "<xes:trace>").replace("</trace>", "</xes:trace>"),
 "junk after": log(tr("c1")) + "junk\n",
 "comment after": log(tr("c1")) + "<!-- c -->\n",
 "blank after": log(tr("c1")) + "\n\n  \n",
 "no final newline": log(tr("c1")).rstrip("\n"),
 "no log end": log(tr("c1"), tail=""),
 "two log ends": log(tr("c1"), tail="</log>\n</log>\n"),
 "event outside": log(ev("A"), tr("c1")),
 "event at log level after trace": log(tr("c1"), ev("A")),
 "comment in body": log(tr("c1")).replace("\t\t<event>\n", "\t\t<!-- x -->\n\t\t<event>\n", 1),
 "comment trace in header": log(tr("c1"), head=HEAD + "<!--\n\t<trace>\n-->\n"),
 "trace in header comment open": log(tr("c1"), head=HEAD + "<!--\n\t<trace>\n") .replace("</log>", "--></log>"),
 "self closing event": log(tr("c1", ["\t\t<event/>\n"])),
 "event with attr": log(tr("c1")).replace("<event>", '<event id="1">'),
 "mismatched": log(tr("c1")).replace("</event>", "</trace>", 1),
 "unclosed trace": log(tr("c1")).replace("\t</trace>\n", ""),
 "attr in root": log(tr("c1")).replace("\t<trace>\n", '\t<string key="x" value="y"/>\n\t<trace>\n'),
 "lt in value": log(tr("c1", [ev("a<b")])),
 "gt in value": log(tr("c1", [ev("a>b")])),
 "amp alone": log(tr("c1", [ev("a&b")])),
 "empty key": log(tr("c1", [ev("A", extra='\t\t\t<string key="" value="v"/>\n')])),
 "empty value": log(tr("c1", [ev("A", extra='\t\t\t<string key="e" value=""/>\n')])),
 "json-ish": log(tr("c1", [ev("A", extra='\t\t\t<string key="j" value="{&quot;a&quot;: [1,2]}"/>\n')])),
 "many keys": log(tr("c1", [ev("A", extra="".join(f'\t\t\t<string key="k{i}" value="{i}"/>\n' for i in range(100)))])),
 "many keys dup": log(tr("c1", [ev("A", extra="".join(f'\t\t\t<string key="k{i % 70}" value="{i}"/>\n' for i in range(100)))])),
 "log end then trace": log(tr("c1"), tail="</log>\n") + tr("c2"),
 "empty": "",
 "header only": HEAD,
 "not xes": "<html>\n\t<trace>\n</html>\n",
 "header event": log(tr("c1"), head=HEAD.replace("</global>", "</global>\n\t<event/>")),
}



def outcome(path: Path, keep, fast: bool, segment: int | None = None):
    """What ``read_xes`` gives: ("ok", rows) or ("error", message), and the digest."""
    digest = hashlib.blake2b(digest_size=20)
    saved = xes_lines._SEGMENT
    if segment:
        xes_lines._SEGMENT = segment
    try:
        return ("ok", xes.read_xes(path, keep, None, digest, fast=fast)), digest.hexdigest()
    except LogImportError as exc:
        return ("error", str(exc)), digest.hexdigest()
    finally:
        xes_lines._SEGMENT = saved


@pytest.mark.parametrize("compressed", [False, True], ids=["xes", "gz"])
@pytest.mark.parametrize("name", list(CASES))
def test_both_readers_agree(name, compressed, tmp_path):
    text = CASES[name]
    data = text if isinstance(text, bytes) else text.encode()
    path = tmp_path / ("log.xes.gz" if compressed else "log.xes")
    path.write_bytes(gzip.compress(data) if compressed else data)
    for keep in (None, {"k&", "n", "f", "x", "s", "z", "concept:name"}):
        (kind, slow), slow_digest = outcome(path, keep, fast=False)
        for segment in (None, 7, 64):      # tiny segments cut lines and traces anywhere
            (fast_kind, fast), fast_digest = outcome(path, keep, True, segment)
            assert fast_kind == kind, (keep, segment, slow if kind == "error" else fast)
            if kind == "ok":
                assert fast.equals(slow), (keep, segment)
                assert fast_digest == slow_digest
            else:
                assert fast == slow


@pytest.mark.parametrize("log", ["running-example/running-example.xes",
                                 "receipt/receipt.xes.gz"])
def test_the_shipped_logs_take_the_fast_path_and_agree(log):
    path = ROOT / "data" / log
    rows = xes_lines.read_lines(path, None, None, None)
    assert rows is not None, "the vectorised reader gave up on a writer's layout"
    assert rows.equals(xes.read_xes(path, fast=False))


def test_the_fast_path_reads_the_plain_layout_and_leaves_the_rest_to_expat(tmp_path):
    plain, odd = tmp_path / "plain.xes", tmp_path / "odd.xes"
    plain.write_text(CASES["typed"])
    odd.write_text(CASES["reversed attrs"])
    assert xes_lines.read_lines(plain, None, None, None) is not None
    assert xes_lines.read_lines(odd, None, None, None) is None
