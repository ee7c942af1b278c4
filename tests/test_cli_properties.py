"""Any experiment file and any --set value ends in a plan or a one-line error (exit 2), never a
traceback: a property test over random TOML documents and overrides (hypothesis), toy-model,
SAE and LLC settings alike, nan and inf among the values."""

import re
import string

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from toysuper import cli
from toysuper import settings as table

# toy-model, SAE and LLC settings alike (an [sae] or [source] section makes an SAE experiment)
KEYS = sorted({s.key for s in table.TABLE + table.SAE_TABLE}) + [
    "data.importance[0]", "data.density[-1]", "model.width", "train.nope", "sweep.x"]
SCALARS = st.one_of(st.integers(-3, 10 ** 4), st.floats(-10, 10 ** 3, allow_nan=False),
                    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
                    st.booleans(), st.text(string.ascii_letters + "._-/ ", max_size=12))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4),
                   st.fixed_dictionaries({"decay": st.floats(-1, 2, allow_nan=False)}),
                   st.fixed_dictionaries({"range": st.integers(-2, 5)}),
                   st.fixed_dictionaries({"logspace": st.lists(st.floats(-1, 2), max_size=3),
                                          "num": st.integers(-1, 5)}))


def _toml(v) -> str:
    """A value as TOML: strings quoted, lists and inline tables written out."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return repr(v)


@st.composite
def documents(draw):
    """An experiment file: sections of known and unknown keys with any values, or plain text."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.text(max_size=60))  # usually not TOML at all
    chosen = draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
    if draw(st.booleans()):  # the tables whose needs are checked before training
        chosen["tables"] = draw(st.lists(st.sampled_from(["llc", "sae_optima", "scaling", "x"]),
                                         max_size=2))
    sections: dict = {}
    top = {"tables": chosen.pop("tables")} if "tables" in chosen else {}
    for key, value in chosen.items():
        section, name = key.split(".", 1)
        if draw(st.booleans()):  # the same key as a sweep axis
            section, name = "sweep", key
        sections.setdefault(section, {})[name] = value
    lines = [f"name = {_toml(draw(st.sampled_from(['p', 'x y', '', '../up', '.p'])))}"]
    lines += [f"{k} = {_toml(v)}" for k, v in top.items()]
    for section, items in sections.items():
        lines.append(f"[{section}]")
        lines += [f'"{k}" = {_toml(v)}' if "[" in k or "." in k else f"{k} = {_toml(v)}"
                  for k, v in items.items()]
    return "\n".join(lines) + "\n"


OVERRIDES = st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS + ["", "x", "train"]),
                               st.one_of(st.text(max_size=8), SCALARS.map(str))), max_size=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents(), OVERRIDES)
def test_any_experiment_file_ends_in_a_plan_or_one_line_error(tmp_path, capsys, text, overrides):
    path = tmp_path / "random.toml"
    path.write_text(text)
    args = ["run", str(path), "--plan", "--no-probe", "--out", str(tmp_path / "out")]
    for o in overrides:
        args += ["--set", o]
    code = cli.main(args)  # an exception escaping here is the traceback this test forbids
    out, err = capsys.readouterr()
    event(f"exit {code}")
    if code == 0:
        assert re.search(r"\d+ (models|SAEs) in \d+ chunks", out) and err == ""
    else:
        assert code == 2 and err.startswith("toysuper: error: ")
        assert err.count("\n") == 1, err
