"""The documentation's contract with the package (issue 14), checked without building the site.

- every public name (``gradchain.__all__`` and ``gradchain.schedules.__all__``) has exactly one
  entry in the generated API pages (``docs/_ext/gradchain_api.py``), on the page of its concept,
  and a name from a folder no page claims is refused;
- every public callable that takes arguments documents each of them in an ``Args:`` section,
  and every public function says what it returns (``Returns:``);
- every optimizer alias, and the main primitives and wrappers, carry a runnable example (run by
  ``pytest --doctest-modules gradchain``, which the suite's configuration includes);
- the code the guides write themselves (not the README sections they include) runs.

The Sphinx build itself (``python -m sphinx -W -b html docs docs/_build/html``) runs in CI.
"""

from __future__ import annotations

import collections
import importlib.util
import inspect
import re
import types
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent


def _load_api():
    spec = importlib.util.spec_from_file_location(
        "gradchain_api", ROOT / "docs" / "_ext" / "gradchain_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


API = _load_api()
NAMES = API.public_names()

# The main primitives and wrappers whose docstrings show a runnable example, beside every
# optimizer alias (found by its folder, so new aliases are held to it too).
EXAMPLES_REQUIRED = (
    "chain", "branch", "divide_by_sqrt", "apply_updates", "ema", "scale_by_momentum",
    "scale_by_adam", "scale_by_learning_rate", "add_decayed_weights", "clip_by_global_norm",
    "param_groups", "apply_where", "masked", "freeze_where", "accumulate_gradients",
    "MultiSteps", "skip_non_finite", "lookahead", "reduce_on_plateau", "get_hyperparams",
    "set_hyperparams", "find_state", "describe_state", "state_bytes", "effective_learning_rate",
)


def _rendered_entries() -> collections.Counter:
    """How many times each name is given an entry (an autodoc directive) over all pages."""
    pages = API.api_pages()
    entries = collections.Counter()
    for page, title, _ in API.PAGES:
        if not pages[page]:
            continue
        text = API.render_page(page, title, pages[page])
        entries.update(re.findall(r"^\.\. (?:auto(?:function|class|module)|py:data):: (\S+)$",
                                  text, re.M))
    return entries


def test_every_public_name_has_exactly_one_entry():
    entries = _rendered_entries()
    names = [q for q, _ in NAMES]
    assert len(names) == len(set(names)) > 140  # both lists were read
    for name in names:
        assert entries[name] == 1, (name, entries[name])


def test_names_are_on_the_page_of_their_concept():
    pages = API.api_pages()
    page = {q: p for p, modules in pages.items() for entries in modules.values()
            for q, _ in entries}
    assert page["gradchain.adam"] == "optimizers"
    assert page["gradchain.chain"] == page["gradchain.GradientTransformation"] == "protocol"
    assert page["gradchain.ema"] == page["gradchain.EmaState"] == "moments"
    assert page["gradchain.schedules.step_lr"] == page["gradchain.reduce_on_plateau"] == \
        page["gradchain.schedules"] == "schedules"
    assert page["gradchain.quantized"] == "state_formats"
    assert page["gradchain.lr_finder"] == "tools"


def test_a_name_from_an_unclaimed_folder_is_refused():
    def orphan():
        """A public function in a folder no API page claims."""

    orphan.__module__ = "gradchain.newfolder.orphan"
    with pytest.raises(LookupError, match=r"gradchain\.orphan \(defined in "
                                          r"gradchain\.newfolder\.orphan\) belongs to no API page"):
        API.page_of("gradchain.orphan", orphan)


def _documented_callables():
    for qualified, obj in NAMES:
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and not API.is_state(obj):
            yield qualified, obj


def _parameters(obj) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = inspect.signature(target).parameters
    return [name for name in params if name not in ("self", "cls")]


def _section(doc: str, title: str) -> str | None:
    """The indented block under ``title:`` in a Google-style docstring, or None."""
    match = re.search(rf"^{title}:\n((?:[ \t]+\S.*\n|[ \t]*\n)+)", doc + "\n", re.M)
    return match.group(1) if match else None


@pytest.mark.parametrize("qualified,obj", list(_documented_callables()),
                         ids=[q for q, _ in _documented_callables()])
def test_arguments_and_return_value_are_documented(qualified, obj):
    doc = inspect.getdoc(obj) or ""
    params = _parameters(obj)
    if params:
        args = _section(doc, "Args")
        assert args is not None, f"{qualified}: no Args: section"
        listed = set(re.findall(r"^\s{2,4}\**(\w+)(?: \([^)]*\))?:", args, re.M))
        missing = [p for p in params if p not in listed]
        assert not missing, f"{qualified}: Args: does not document {missing}"
    if not inspect.isclass(obj):
        assert _section(doc, "Returns") is not None, f"{qualified}: no Returns: section"


def test_optimizers_and_main_primitives_have_examples():
    public = dict(NAMES)
    wanted = [q for q, obj in NAMES if not isinstance(obj, types.ModuleType)
              and getattr(obj, "__module__", "").startswith("gradchain.optimizers.")]
    wanted += [f"gradchain.{name}" for name in EXAMPLES_REQUIRED]
    without = [q for q in wanted if ">>> " not in (inspect.getdoc(public[q]) or "")]
    assert not without, f"no runnable example in: {without}"


def test_inline_code_naming_a_public_object_links_to_it():
    targets = API._targets()
    linked = {text: API.link_target(text, targets) for text in (
        "gc.adam(1e-3)", "gradchain.chain", "ema(b1)", "scale_by_adam", "MultiStepsState",
        "S.step_lr(0.1, 30)", "schedules.one_cycle_lr", "ema", "scale", "learning_rate",
        "gc.nothing", "x + y", "chain(ema(b1), scale(2))")}
    assert linked == {
        "gc.adam(1e-3)": "gradchain.adam", "gradchain.chain": "gradchain.chain",
        "ema(b1)": "gradchain.ema", "scale_by_adam": "gradchain.scale_by_adam",
        "MultiStepsState": "gradchain.MultiStepsState",
        "S.step_lr(0.1, 30)": "gradchain.schedules.step_lr",
        "schedules.one_cycle_lr": "gradchain.schedules.one_cycle_lr",
        # a bare word may be a state field (``ema``, ``scale``): not linked
        "ema": None, "scale": None, "learning_rate": None, "gc.nothing": None, "x + y": None,
        "chain(ema(b1), scale(2))": None}


GUIDES_WITH_CODE = ("getting_started", "flax_nnx", "flax_linen", "custom_optimizer")


@pytest.mark.parametrize("guide", GUIDES_WITH_CODE)
def test_the_guides_code_runs(guide):
    text = (ROOT / "docs" / "guides" / f"{guide}.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, f"docs/guides/{guide}.md", "exec"), {"__name__": f"guide_{guide}"})
