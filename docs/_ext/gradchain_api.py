"""The API reference, generated from the package: one page per concept, one entry per public name.

Every name in ``gradchain.__all__`` (and every schedule in ``gradchain.schedules.__all__``) is
placed on the page of the concept its home module belongs to (``obj.__module__``: the folder
``gradchain/<concept>/``, except the protocol's and the state formats' modules in ``core/``).
A new public name gets its entry without editing the docs; a name from a folder that no page
claims stops the build (and ``tests/test_docs.py``) with the name and its module. Each page
opens with its subpackage's docstring, then one section per home module (its docstring, then
its functions in source order, then its classes); a state ``NamedTuple`` shows its fields.

Importable without Sphinx (the test reads ``api_pages``); ``setup`` is the Sphinx extension,
which writes ``docs/api/*.rst`` when the build starts (rewriting only what changed).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
from pathlib import Path

# (page, title, the modules it holds: a module or a package prefix), in reading order.
PAGES = (
    ("protocol", "Protocol and combinators",
     ("gradchain.core.transformation", "gradchain.core.updates", "gradchain.combinators")),
    ("kit", "Composition kit",
     ("gradchain.kit", "gradchain.core.public", "gradchain.core.validation",
      "gradchain.core.hyperparams")),
    ("moments", "Moments", ("gradchain.moments",)),
    ("preconditioners", "Preconditioners", ("gradchain.preconditioners",)),
    ("step_size", "Step sizes", ("gradchain.step_size",)),
    ("regularization", "Regularization", ("gradchain.regularization",)),
    ("schedules", "Schedules", ("gradchain.schedules",)),
    ("clipping", "Clipping", ("gradchain.clipping",)),
    ("wrappers", "Wrappers", ("gradchain.wrappers", "gradchain.averaging")),
    ("introspection", "Introspection", ("gradchain.introspection",)),
    ("optimizers", "Optimizers", ("gradchain.optimizers",)),
    ("state_formats", "State formats", ("gradchain.core.quantized",)),
    ("execution", "Execution", ("gradchain.execution",)),
    ("interop", "Interop", ("gradchain.interop",)),
    ("tools", "Tools", ("gradchain.tools",)),
)



def public_names() -> list[tuple[str, object]]:
    """``(qualified name, object)`` for every public name: ``gradchain.<name>`` for each name in
    ``gradchain.__all__``, ``gradchain.schedules.<name>`` for each schedule."""
    import gradchain
    from gradchain import schedules

    return ([(f"gradchain.{n}", getattr(gradchain, n)) for n in gradchain.__all__]
            + [(f"gradchain.schedules.{n}", getattr(schedules, n)) for n in schedules.__all__])


def home_module(obj, qualified: str = "") -> str:
    """The module that defines ``obj``: a module is its own home; a value without a module of
    its own (a type alias) lives where the package imports it from."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return obj.__module__
    package, _, name = qualified.rpartition(".")
    return _imported_from(package).get(name, getattr(obj, "__module__", None) or package)


def _imported_from(package: str) -> dict:
    """``{name: module}`` for the ``from gradchain.x import name`` lines of ``package``."""
    source = inspect.getsource(importlib.import_module(package))
    return {alias.asname or alias.name: node.module for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}


def attribute_doc(module: str, name: str) -> str:
    """The docstring written under ``name = ...`` in ``module`` (a string after it)."""
    body = ast.parse(inspect.getsource(importlib.import_module(module))).body
    for assign, after in zip(body, body[1:]):
        if (isinstance(assign, ast.Assign) and any(getattr(t, "id", None) == name
                                                   for t in assign.targets)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
            return inspect.cleandoc(after.value.value)
    return ""


def page_of(qualified: str, obj) -> str:
    """The page that holds ``obj``: the page claiming the longest prefix of its home module."""
    module = home_module(obj, qualified)
    claims = [(len(prefix), page) for page, _, prefixes in PAGES for prefix in prefixes
              if module == prefix or module.startswith(prefix + ".")]
    if not claims:
        raise LookupError(f"{qualified} (defined in {module}) belongs to no API page: add its "
                          f"module to PAGES in docs/_ext/gradchain_api.py")
    return max(claims)[1]


def api_pages() -> dict[str, dict[str, list[tuple[str, object]]]]:
    """``{page: {home module: [(qualified name, object), ...]}}``, every public name once;
    modules sorted by name, functions in source order before classes."""
    pages: dict = {page: {} for page, _, _ in PAGES}
    for qualified, obj in public_names():
        pages[page_of(qualified, obj)].setdefault(
            home_module(obj, qualified), []).append((qualified, obj))
    for page, _, prefixes in PAGES:
        modules = pages[page]
        for module, entries in modules.items():
            entries.sort(key=_entry_order)
        claimed = [next(i for i, p in enumerate(prefixes)
                        if m == p or m.startswith(p + ".")) for m in modules]
        pages_sorted = dict(sorted(modules.items(), key=lambda item: (
            claimed[list(modules).index(item[0])], item[0])))
        modules.clear()
        modules.update(pages_sorted)
    return pages


def _entry_order(entry):
    _, obj = entry
    if isinstance(obj, types.ModuleType):
        return (0, 0)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return (3, 0)
    try:
        line = inspect.getsourcelines(inspect.unwrap(obj))[1]
    except (OSError, TypeError):
        line = 0
    return (2 if inspect.isclass(obj) else 1, line)


def is_state(obj) -> bool:
    """A state class: a ``NamedTuple`` (its fields are documented, not its tuple methods)."""
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def _is_package(module: str) -> bool:
    return hasattr(importlib.import_module(module), "__path__")


def _first_line(module: str) -> str:
    doc = inspect.getdoc(importlib.import_module(module)) or module
    return doc.split("\n\n")[0].replace("\n", " ").rstrip(".")


def _heading(text: str, mark: str) -> list[str]:
    return [text, mark * len(text), ""]


def render_page(page: str, title: str, modules: dict) -> str:
    """The reStructuredText of one API page."""
    lines = _heading(title, "=")
    first = next(prefixes for pg, _, prefixes in PAGES if pg == page)[0]
    intro = first if _is_package(first) else None
    if intro:  # the package's docstring opens the page (and is the target of its name)
        lines += [f".. automodule:: {intro}", ""]
    names = [q for entries in modules.values() for q, obj in entries
             if (inspect.isfunction(obj) or inspect.isclass(obj)) and not is_state(obj)]
    if names:
        lines += [".. py:currentmodule:: None", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   ~{q}" for q in names] + [""]
    for module, entries in modules.items():
        if module != intro:
            lines += _heading(_first_line(module), "-")
            lines += [f".. automodule:: {module}", ""]
        for qualified, obj in entries:
            if isinstance(obj, types.ModuleType):  # a public subpackage
                if qualified != intro:
                    lines += [f".. automodule:: {qualified}", ""]
            elif is_state(obj):  # its fields are in its signature
                lines += [f".. autoclass:: {qualified}", ""]
            elif inspect.isclass(obj):
                lines += [f".. autoclass:: {qualified}", "   :members:", ""]
            elif inspect.isfunction(obj):
                lines += [f".. autofunction:: {qualified}", ""]
            else:  # a value: a type alias
                doc = attribute_doc(module, qualified.rpartition(".")[2])
                shown = re.sub(r"jax\.jaxlib\._jax\.|typing\.", lambda m: m.group(0)[:4]
                               if m.group(0).startswith("jax") else "", repr(obj))
                lines += [f".. py:data:: {qualified}", f"   :value: {shown}", ""]
                lines += ["   " + line if line else "" for line in doc.splitlines()] + [""]
    return "\n".join(lines) + "\n"


def render_index(pages: dict) -> str:
    lines = _heading("API reference", "=")
    lines += ["One page per concept of the package; every public name has its own entry",
              "(``gradchain.<name>``, ``gradchain.schedules.<name>``), with its formula, its",
              "arguments, what it returns, the fields of its state and the reference it follows.",
              "", ".. list-table::", "   :header-rows: 1", "   :widths: 1 3 1", "",
              "   * - concept", "     - what it holds", "     - names"]
    for page, _, prefixes in PAGES:
        if pages[page]:
            count = sum(len(entries) for entries in pages[page].values())
            lines += [f"   * - :doc:`{page}`", f"     - {_first_line(prefixes[0])}",
                      f"     - {count}"]
    lines += ["", ".. toctree::", "   :hidden:", ""]
    lines += [f"   {page}" for page, _, _ in PAGES if pages[page]] + [""]
    return "\n".join(lines)


def render_example_section(example: Path) -> str:
    """The worked example of the guide "Writing your own optimizer", once
    ``examples/custom_optimizer.py`` exists (empty before)."""
    if not example.exists():
        return ""
    return (f"## A worked example\n\n`examples/{example.name}` writes new optimizers with the "
            f"kit and trains with them:\n\n```{{literalinclude}} ../../examples/{example.name}"
            f"\n:language: python\n```\n")


def write_pages(folder: Path) -> None:
    """Write ``index.rst`` and one ``<page>.rst`` per non-empty page into ``folder``, and the
    example's section of the custom-optimizer guide (``_custom_optimizer_example.md.inc``)."""
    pages = api_pages()
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"index.rst": render_index(pages)}
    texts.update({f"{page}.rst": render_page(page, title, pages[page])
                  for page, title, _ in PAGES if pages[page]})
    example = folder.parent.parent / "examples" / "custom_optimizer.py"
    texts["_custom_optimizer_example.md.inc"] = render_example_section(example)
    for name, text in texts.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in folder.iterdir():
        if stale.name not in texts:
            stale.unlink()


def _drop_module_title(app, what, name, obj, options, lines):
    """A module section's title is its docstring's first paragraph: do not repeat it."""
    if what == "module" and not getattr(obj, "__path__", None) and lines:
        while lines and lines[0].strip():
            lines.pop(0)


def _state_fields(app, what, name, obj, options, lines):
    """A state ``NamedTuple`` without a docstring of its own: say whose state it is (the public
    functions of its module) and list its fields."""
    if what == "class" and is_state(obj) and (not lines or lines[0].startswith(obj.__name__)):
        makers = [f":py:func:`~{q}`" for q, o in public_names()
                  if inspect.isfunction(o) and o.__module__ == obj.__module__]
        whose = (" or ".join(makers) if makers else "the transformation defined beside it")
        lines[:] = [f"The state of {whose}: the ``NamedTuple`` "
                    f"``{obj.__name__}({', '.join(obj._fields)})``, made by ``init`` and "
                    "returned by each ``update`` (what each field holds: *Returns* above)."]


# Inline code that names a public object becomes a link to its entry: ``gc.adam(...)``,
# ``gradchain.chain``, ``schedules.step_lr``, and bare names that cannot be a state field or a
# plain word (``scale_by_adam``, ``MultiStepsState``, or any name followed by a call whose
# arguments hold no call: ``chain(ema(b1), ...)`` is a formula, not a reference to ``chain``).
_LITERAL = re.compile(r"^(gc\.|gradchain\.|S\.)?((?:schedules\.)?[A-Za-z_]\w*)(\([^()]*\))?$")


def link_target(text: str, targets: dict) -> str | None:
    """The qualified name an inline code ``text`` refers to, or None."""
    match = _LITERAL.match(text.strip())
    if not match:
        return None
    prefix, name, call = match.groups()
    qualified = targets.get(name)
    if qualified is None and prefix == "S.":
        qualified = targets.get(f"schedules.{name}")
    if qualified and (prefix or call or "_" in name or name[0].isupper()):
        return qualified
    return None


def _targets() -> dict:
    targets = {}
    for qualified, _ in public_names():
        short = qualified.removeprefix("gradchain.")
        targets[short] = qualified
        targets.setdefault(short.removeprefix("schedules."), qualified)
    return targets


def _link_names(app, doctree):
    from docutils import nodes
    from sphinx import addnodes

    targets = _targets()
    for node in list(doctree.findall(nodes.literal)):
        if any(isinstance(a, (nodes.title, nodes.reference, addnodes.pending_xref,
                              addnodes.desc_signature))
               for a in _ancestors(node)):
            continue
        qualified = link_target(node.astext(), targets)
        if qualified:
            ref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=qualified,
                                        refexplicit=True, refwarn=False)
            node.replace_self(ref)
            ref += node


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def setup(app):
    def generate(app):
        write_pages(Path(app.srcdir) / "api")

    app.connect("builder-inited", generate)
    app.connect("autodoc-process-docstring", _drop_module_title)
    app.connect("autodoc-process-docstring", _state_fields)
    app.connect("doctree-read", _link_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
