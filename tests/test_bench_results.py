"""bench/_results.py: the RESULTS.md section writer and machine line shared by the benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _results import machine, update_section  # noqa: E402

DOC = """# Benchmarks

<!-- a:start -->
## A
old a
<!-- a:end -->

<!-- b:start -->
## B
old b
<!-- b:end -->

trailing notes
"""


def test_replaces_only_its_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(DOC, encoding="utf-8")
    assert update_section("a", "\n## A\nnew a\n\n", path) == path
    text = path.read_text(encoding="utf-8")
    assert text == DOC.replace("## A\nold a", "## A\nnew a")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary behind


def test_appends_a_missing_section_and_keeps_the_rest_byte_identical(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(DOC, encoding="utf-8")
    update_section("c", "## C\nnew c", path)
    assert path.read_text(encoding="utf-8") == DOC + "\n<!-- c:start -->\n## C\nnew c\n<!-- c:end -->\n"
    update_section("c", "## C\nnewer c", path)  # a second write replaces, does not append again
    text = path.read_text(encoding="utf-8")
    assert text.count("<!-- c:start -->") == 1 and "newer c" in text and "new c\n" not in text
    assert text.startswith(DOC)


def test_creates_the_file(tmp_path):
    path = tmp_path / "sub" / "RESULTS.md"
    update_section("a", "## A", path)
    assert path.read_text(encoding="utf-8") == "# Benchmarks\n\n<!-- a:start -->\n## A\n<!-- a:end -->\n"


def test_machine_line():
    line = machine()
    assert "CPU cores visible" in line and "Python " in line and "numpy " in line
    assert "load average" in line and line.endswith("UTC")
