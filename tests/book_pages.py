"""Run a chapter of the book in docs/ as its notebook would, and check (or rewrite) the outputs it shows.

A chapter is Markdown. Its ```python blocks run in order in one namespace; a ```text block that follows a
python block directly (nothing but blank lines between them) is what that block prints, and must match.
A python block whose first line starts with ``# output varies`` (a timing, say) shows its output too, but
it is not compared.

    python tests/book_pages.py docs/02_im2col.md             # run it; report the outputs that differ
    python tests/book_pages.py --update docs/02_im2col.md    # run it in docs/ and rewrite its outputs

``--update`` runs from docs/ itself, so it also redraws the chapter's figures in docs/figures/.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n?", flags=re.S | re.M)
VARIES = "# output varies"


def blocks(text):
    """[(language, body, start, end)] of every fenced block, in order."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]


def pages(text):
    """[(code, shown output or None, (start, end) of the output block or None, compared)] per python block."""
    found = blocks(text)
    result = []
    for k, (lang, body, start, end) in enumerate(found):
        if lang != "python":
            continue
        shown, where = None, None
        if k + 1 < len(found) and found[k + 1][0] == "text" and not text[end:found[k + 1][2]].strip():
            shown, where = found[k + 1][1], (found[k + 1][2], found[k + 1][3])
        result.append((body, shown, where, not body.startswith(VARIES)))
    return result


def run(text, name="chapter"):
    """Run the python blocks; [(printed output, shown output, where, compared)] per block."""
    namespace = {"__name__": "__main__"}
    outcome = []
    for index, (code, shown, where, compared) in enumerate(pages(text)):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{name} python block {index + 1}", "exec"), namespace)
        outcome.append((printed.getvalue(), shown, where, compared))
    return outcome


def differences(outcome):
    """Messages for each compared block whose printed output is not the output the page shows."""
    problems = []
    for index, (printed, shown, where, compared) in enumerate(outcome):
        if printed.strip() and shown is None:
            problems.append(f"python block {index + 1} prints output the page does not show:\n{printed}")
        elif shown is not None and compared and printed.rstrip() != shown.rstrip():
            problems.append(f"python block {index + 1} printed\n{printed}\nbut the page shows\n{shown}")
    return problems


def rewrite(text, outcome):
    """The text with every output block set to what its python block printed (added where missing)."""
    edits = []
    python_ends = [end for lang, _, _, end in blocks(text) if lang == "python"]
    for (printed, shown, where, compared), code_end in zip(outcome, python_ends):
        new = f"```text\n{printed.rstrip()}\n```\n" if printed.strip() else ""
        if where is not None:
            edits.append((where[0], where[1], new))
        elif new:
            edits.append((code_end, code_end, "\n" + new))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("chapters", nargs="+")
    p.add_argument("--update", action="store_true", help="rewrite the output blocks (and figures) in place")
    args = p.parse_args(argv)
    status = 0
    for path in args.chapters:
        path = os.path.abspath(path)
        text = open(path, encoding="utf-8").read()
        here = os.getcwd()
        os.chdir(os.path.dirname(path))
        try:
            outcome = run(text, os.path.basename(path))
        finally:
            os.chdir(here)
        if args.update:
            new = rewrite(text, outcome)
            if new != text:
                with open(path + ".tmp", "w", encoding="utf-8") as f:
                    f.write(new)
                os.replace(path + ".tmp", path)
                print(f"{path}: outputs rewritten")
        else:
            for problem in differences(outcome):
                print(f"{path}: {problem}")
                status = 1
    return status


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
