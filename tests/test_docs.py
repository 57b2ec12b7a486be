"""The docs say what the code does: README's Python snippets run, the options it lists are the scripts'
options, and the examples in docstrings (``>>>``) give what they show."""
import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys

import pytest

import minidl

from minidl.train.recipe import build_parser

from test_recipe import ROOT, load_script

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def python_blocks(text):
    """The fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_snippets():
    assert len(python_blocks(README)) >= 1


@pytest.mark.parametrize("index", range(len(python_blocks(README))))
def test_readme_python_snippet_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                        # a snippet that writes files writes them here
    code = python_blocks(README)[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme_snippet"})


def test_readme_lists_every_training_option_and_only_those():
    listed = re.search(r"`--help` lists every option \((.*?)\)", README, flags=re.S)
    assert listed, "README should list the training script's options after '`--help` lists every option ('"
    in_readme = set(re.findall(r"`(--[a-z0-9-]+)", listed.group(1)))
    task = load_script("train_nin_cifar10").CIFAR10
    in_parser = {s for action in build_parser(task)._actions for s in action.option_strings
                 if s.startswith("--") and s not in ("--help",) and not s.startswith("--no-")}
    assert in_readme == in_parser, (f"only in README: {sorted(in_readme - in_parser)}; "
                                    f"only in the script: {sorted(in_parser - in_readme)}")


def test_readme_commands_use_existing_options():
    """Every `python examples/X.py --opt ...` line in README names options that script's --help lists."""
    commands = re.findall(r"python (examples/\w+\.py)([^\n`#]*)", README)
    assert commands
    helps = {}
    for script, args in commands:
        assert os.path.exists(os.path.join(ROOT, script)), f"README runs {script}, which does not exist"
        if script not in helps:
            done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            helps[script] = set(re.findall(r"(?<![\w-])(--[a-z0-9-]+)", done.stdout))
        for option in re.findall(r"(?<!\S)(--[a-z0-9-]+)", args):
            assert option in helps[script], f"README: `python {script}{args}` uses {option}, unknown to {script}"


def modules_with_examples():
    names = [info.name for info in pkgutil.walk_packages(minidl.__path__, "minidl.")]
    return [name for name in names if ">>>" in (importlib.util.find_spec(name).loader.get_source(name) or "")]


def test_some_docstrings_have_examples():
    assert len(modules_with_examples()) >= 2


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
