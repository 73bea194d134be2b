"""``load_example(name)``: the script ``examples/<name>.py`` imported as a module, for tests."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    """Runs ``examples/<name>.py`` as the module ``gradchain_examples_<name>`` and returns it."""
    spec = importlib.util.spec_from_file_location(f"gradchain_examples_{name}",
                                                  EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
