"""``examples/custom_optimizer.py``: five primitives written with the public kit equal Optax."""

from examples_module import load_example

example = load_example("custom_optimizer")


def test_every_primitive_built_with_the_kit_trains_like_its_optax_twin(capsys):
    rows = example.main(["--steps", "15"])
    assert len(rows) == 5
    for title, ours, theirs, gap in rows:
        assert gap <= 1e-13, title
        assert abs(ours - theirs) <= 1e-12, title
    out = capsys.readouterr().out
    assert "3 shared statistic: AdaBelief" in out and "38560/38560" in out
