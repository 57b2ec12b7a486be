"""The book in docs/ runs: every chapter's Python blocks, in order, in one namespace (as its notebook would),
and each prints what the page shows under it (tests/book_pages.py has the rules).

Each chapter runs in a temporary copy of the layout it expects (a ``docs/`` folder beside ``benchmarks/``),
so the figures it draws land in a temporary ``figures/`` folder, never over the committed ones; the test
then checks that every figure the chapter draws is one its text shows and that the repository holds it.
"""
import os
import re

import pytest

from book_pages import differences, run
from test_docs import python_blocks
from test_recipe import ROOT

DOCS = os.path.join(ROOT, "docs")
CHAPTERS = sorted(name for name in os.listdir(DOCS) if re.match(r"\d\d_.*\.md$", name))


def read(name):
    return open(os.path.join(DOCS, name), encoding="utf-8").read()


def local_links(text):
    """Targets of the Markdown links and images that point into the repository (not the web, not anchors)."""
    return [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"(https?:|#|mailto:)", t)]


def test_the_book_has_its_seven_chapters_and_a_contents_page():
    assert len(CHAPTERS) == 7, CHAPTERS
    contents = read("README.md")
    for name in CHAPTERS:
        assert f"({name})" in contents, f"docs/README.md does not link {name}"
        assert len(python_blocks(read(name))) >= 3, f"{name}: a chapter works its ideas in code"


@pytest.mark.parametrize("name", CHAPTERS + ["README.md"])
def test_links_point_at_files_that_exist(name):
    for target in local_links(read(name)):
        assert os.path.exists(os.path.normpath(os.path.join(DOCS, target))), f"{name} links {target}, missing"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_names_the_minidl_files_it_explains(name):
    files = [t for t in local_links(read(name)) if t.startswith("../minidl/")]
    assert len(files) >= 2, f"{name}: tie each idea to the file in minidl/ that implements it"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_top_to_bottom(name, tmp_path, monkeypatch, capsys):
    root = tmp_path / "book"
    (root / "docs" / "figures").mkdir(parents=True)
    for folder in ("benchmarks", "examples", "minidl"):     # what the chapters read, as seen from docs/
        os.symlink(os.path.join(ROOT, folder), root / folder)
    monkeypatch.chdir(root / "docs")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    text = read(name)
    problems = differences(run(text, f"docs/{name}"))
    assert not problems, "\n\n".join(problems) + "\n(python tests/book_pages.py --update rewrites the outputs)"
    shown = {t for t in local_links(text) if t.startswith("figures/")}
    drawn = {f"figures/{f}" for f in os.listdir(root / "docs" / "figures")}
    assert drawn <= shown, f"{name} draws {sorted(drawn - shown)} but does not show them"
    for figure in drawn:
        assert os.path.exists(os.path.join(DOCS, figure)), f"{name}: {figure} is drawn but not committed"


def test_each_chapter_opens_as_a_notebook():
    jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed (pip install jupytext)")
    for name in CHAPTERS:
        notebook = jupytext.reads(read(name), fmt="md")
        code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        assert [c.strip() for c in code] == [b.strip() for b in python_blocks(read(name))], name


PAGE = """Some text.

```python
x = 6 * 7
print(x)
```

```text
{shown}
```

```python
# output varies
print("a timing")
```

```text
something else
```

```python
print("not shown yet")
```
"""


def test_the_runner_compares_printed_and_shown_outputs_and_rewrites_them():
    from book_pages import rewrite
    good = PAGE.format(shown="42")
    problems = differences(run(good))
    assert len(problems) == 1 and "block 3 prints output the page does not show" in problems[0]
    wrong = PAGE.format(shown="41")
    problems = differences(run(wrong))
    assert len(problems) == 2 and "block 1 printed\n42\n\nbut the page shows\n41" in problems[0]
    fixed = rewrite(wrong, run(wrong))
    assert differences(run(fixed)) == []
    assert "```text\n42\n```" in fixed and "```text\na timing\n```" in fixed
    assert fixed.endswith('print("not shown yet")\n```\n\n```text\nnot shown yet\n```\n')
