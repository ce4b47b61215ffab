"""Built-in and user prompt templates: markers, one-pass rendering, loading and versioning."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rubric_arm.errors import InputError
from rubric_arm.templates import Template, builtin_templates, load_template

JUDGE_MARKERS = [
    "Response A",
    "Response B",
    "[Hard Rule]",
    "[Principle]",
    "Winner:",
    "--- Compliance Check ---",
    "Identified Gatekeeper Criterion:",
    "--- Analysis ---",
    "**Response A:**",
    "**Response B:**",
    "--- Final Judgment ---",
    "Justification:",
    "Task to Evaluate:",
    "Instruction:",
    "Rubric:",
    "Response A:",
    "Response B:",
]
JUDGE_FIELDS = {"prompt": "P", "rubric": "R", "response_a": "RA", "response_b": "RB"}


def test_builtins_listed():
    assert set(builtin_templates()) == {
        "generator", "judge", "judge-general", "direct", "tiny-generator", "tiny-judge",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["judge", "judge-general"])
def test_judge_templates_have_published_markers(name):
    t = load_template(name)
    assert t.role == "judge"
    text = t.render(**JUDGE_FIELDS)[-1]["content"]
    for marker in JUDGE_MARKERS:
        assert marker in text, marker
    for first, then in [
        ("--- Compliance Check ---", "--- Analysis ---"),
        ("--- Analysis ---", "--- Final Judgment ---"),
        ("--- Final Judgment ---", "Task to Evaluate:"),
        ("\nJustification: <", "Winner:"),
    ]:
        assert text.index(first) < text.index(then)
    task = text[text.index("Task to Evaluate:") :]
    assert task.index("Instruction:\nP") < task.index("Rubric:\nR")
    assert task.index("Rubric:\nR") < task.index("Response A:\nRA") < task.index("Response B:\nRB")
    assert task.rstrip().endswith("RB")


def test_general_judge_adds_its_sections():
    text = load_template("judge-general").render(**JUDGE_FIELDS)[0]["content"]
    assert "Gatekeeper Reasoning:" in text
    assert text.index("Aggregation Summary:") < text.index("\nJustification: <")
    plain = load_template("judge").render(**JUDGE_FIELDS)[0]["content"]
    assert "Gatekeeper Reasoning:" not in plain and "Aggregation Summary:" not in plain


def test_generator_template_structure():
    t = load_template("generator")
    assert t.role == "generator"
    chat = t.render(prompt="Write a haiku about rain.")
    assert chat == [{"role": "user", "content": chat[0]["content"]}]
    text = chat[0]["content"]
    for marker in ["[Hard Rule]", "[Principle]", '"The response"', "numbered list"]:
        assert marker in text
    assert text.endswith(
        "Here is the request:\nWrite a haiku about rain.\n\n"
        "Please generate the rubrics for the above request."
    )


def test_judge_template_is_concise():
    text = load_template("judge").render(prompt="", rubric="", response_a="", response_b="")
    assert len(text[0]["content"].split()) < 260


def test_builtins_are_cached_and_versioned():
    assert load_template("judge") is load_template("judge")
    versions = {load_template(n).version for n in builtin_templates()}
    assert len(versions) == len(builtin_templates()) == 6
    assert load_template("judge").version.startswith("judge@1+")


def test_render_is_one_pass_and_literal():
    t = load_template("judge")
    tricky = {
        "prompt": "Use {rubric} and {0} and {} and {{x}}",
        "rubric": "1. The response mentions {response_b}. [Hard Rule]",
        "response_a": "{prompt}",
        "response_b": "\\1 \\g<0> $1",
    }
    text = t.render(**tricky)[0]["content"]
    for value in tricky.values():
        assert value in text
    assert text.count("Use {rubric} and") == 1
    assert "RB" not in text


@given(st.dictionaries(st.sampled_from(list(JUDGE_FIELDS)), st.text(), min_size=4, max_size=4))
def test_render_inserts_values_verbatim(fields):
    text = load_template("judge").render(**fields)[0]["content"]
    pos = 0
    for key in ("prompt", "rubric", "response_a", "response_b"):
        found = text.find(fields[key], pos)
        assert found >= 0
        pos = found + len(fields[key])


def test_render_rejects_missing_and_unknown_fields():
    t = load_template("judge")
    with pytest.raises(InputError, match="missing field.*response_b"):
        t.render(prompt="p", rubric="r", response_a="a")
    with pytest.raises(InputError, match="unknown field.*extra"):
        t.render(extra="x", **JUDGE_FIELDS)
    with pytest.raises(InputError, match="must be a string"):
        load_template("generator").render(prompt=3)


def test_system_message_comes_first():
    t = Template("g", "generator", "Request: {prompt}", system="Be brief about {prompt}.")
    assert t.render(prompt="x") == [
        {"role": "system", "content": "Be brief about x."},
        {"role": "user", "content": "Request: x"},
    ]


def test_version_follows_content():
    a = Template("g", "generator", "Request: {prompt}")
    assert a.version == Template("g", "generator", "Request: {prompt}").version
    assert a.version != Template("g", "generator", "Request:  {prompt}").version
    assert a.version != Template("g", "generator", "Request: {prompt}", system="s").version
    assert (
        a.version != Template("g", "generator", "Request: {prompt}", declared_version="2").version
    )
    moved = Template("g", "generator", "{prompt}", system="Request: ")
    assert moved.version != Template("g", "generator", "Request: {prompt}", system="").version


def test_plain_text_user_file(tmp_path):
    path = tmp_path / "card-judge.txt"
    path.write_text("Judge.\n{prompt}\n{rubric}\nA: {response_a}\nB: {response_b}\n", "utf-8")
    t = load_template(str(path))
    assert (t.name, t.role, t.system) == ("card-judge", "judge", None)
    assert t.render(**JUDGE_FIELDS)[0]["content"] == "Judge.\nP\nR\nA: RA\nB: RB"
    before = t.version
    path.write_text("Judge!\n{prompt}\n{rubric}\nA: {response_a}\nB: {response_b}\n", "utf-8")
    assert load_template(str(path)).version != before

    gen = tmp_path / "gen.md"
    gen.write_text("Rubric for: {prompt}", "utf-8")
    assert load_template(str(gen)).role == "generator"


def test_yaml_user_file(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text(
        'name: mine\nrole: generator\nversion: 3\nsystem: "Sys"\nuser: "Q: {prompt}"\n', "utf-8"
    )
    t = load_template(str(path))
    assert t.version.startswith("mine@3+")
    assert t.render(prompt="hi") == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Q: hi"},
    ]
    path.write_text('user: "Compare {prompt} {rubric} {response_a} {response_b}"\n', "utf-8")
    t = load_template(str(path))
    assert (t.name, t.role, t.declared_version) == ("mine", "judge", "1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Judge {prompt} {response_a} {response_b}", r"lacks \{rubric\}"),
        ("Judge {prompt} {rubric} {response_a}", r"lacks \{response_b\}"),
        ("No placeholders at all", "none of the placeholders"),
        ("Judge {instruction} {rubric} {response_a} {response_b}", r"unrecognised.*instruction"),
    ],
)
def test_plain_text_role_mismatch(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, "utf-8")
    with pytest.raises(InputError, match=message):
        load_template(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("role: generator\nuser: 'x {prompt} {rubric}'\n", "cannot fill"),
        ("role: judge\nuser: 'x {prompt}'\n", "lacks"),
        ("role: critic\nuser: 'x {prompt}'\n", "role must be one of"),
        ("user: 'x {prompt}'\nextra: 1\n", "unknown key"),
        ("role: generator\n", "'user' must be a string"),
        ("- a list\n", "expected a mapping"),
        ("user: [unclosed\n", "invalid YAML"),
    ],
)
def test_yaml_file_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content, "utf-8")
    with pytest.raises(InputError, match=message):
        load_template(str(path))


def test_unknown_template_name():
    with pytest.raises(InputError, match="unknown template 'nope'.*judge-general"):
        load_template("nope")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9 {prompt}".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_template(str(path))


def test_template_is_frozen():
    t = load_template("generator")
    with pytest.raises(AttributeError):
        t.user = "changed {prompt}"


def test_direct_template_declares_its_role(tmp_path):
    t = load_template("direct")
    assert t.role == "direct" and t.fields == ("prompt", "response_a", "response_b")
    path = tmp_path / "mine.yaml"
    path.write_text(
        'role: direct\nuser: "Pick {response_a} or {response_b} for {prompt}"\n', "utf-8"
    )
    assert load_template(str(path)).role == "direct"
    path.write_text('role: direct\nuser: "{prompt} {rubric} {response_a} {response_b}"\n', "utf-8")
    with pytest.raises(InputError, match="cannot fill"):
        load_template(str(path))
