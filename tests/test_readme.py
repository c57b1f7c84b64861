"""README.md runs as written, and reads as a first page should.

Its Python blocks run in order in one namespace, as a newcomer would paste them into
one session; its prose stays short (at most 900 words, no sentence over 40 words).
"""

import re
from pathlib import Path

import matplotlib
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def sentences(text):
    """The prose's sentences: code blocks removed, list items and lines ending a
    sentence count apart."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    parts = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*[-*] )|\n(?=#)", prose):
        flat = " ".join(paragraph.split())
        parts += [s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z`*(])", flat) if s.strip()]
    return parts


def test_every_python_block_runs_in_order(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # nothing it writes lands in the repository
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 5
    namespace = {"__name__": "__readme__"}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md, Python block {k + 1}", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            pytest.fail(f"README.md's Python block {k + 1} fails: {exc!r}\n{block}")


def test_the_readme_is_short_and_its_sentences_too():
    text = README.read_text()
    assert len(text.split()) <= 900
    long = [s for s in sentences(text) if len(s.split()) > 40]
    assert long == []


def test_the_sentence_splitter_finds_long_sentences():
    text = "One short. " + " ".join(["Word"] * 41) + ".\n\n- item one\n- item two"
    assert [len(s.split()) for s in sentences(text)] == [2, 41, 3, 3]
