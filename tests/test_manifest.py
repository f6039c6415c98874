from __future__ import annotations

from pathlib import Path

import pytest

from smallchain.envref import expand_env
from smallchain.manifest import LocatedProblem, ManifestError, load_manifest, load_manifest_text
from tests.support.seed import SEED_AS_PRINTED

SEED = SEED_AS_PRINTED.replace('name: "gpt-4o\n', 'name: "gpt-4o"\n', 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[occurrence - 1]


def problems_of(text: str, **known: set[str]) -> list[LocatedProblem]:
    with pytest.raises(ManifestError) as err:
        load_manifest_text(text, "smallchain.yaml", **known)
    assert str(err.value) == "\n".join(str(p) for p in err.value.problems)
    return err.value.problems


def only_problem(text: str, **known: set[str]) -> LocatedProblem:
    problems = problems_of(text, **known)
    assert len(problems) == 1, problems
    return problems[0]


def test_seed_as_printed_fails_at_the_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "smallchain.yaml"
    path.write_text(SEED_AS_PRINTED)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    [problem] = err.value.problems
    assert (problem.file, problem.line) == (str(path), 2)
    assert "invalid YAML" in problem.message
    assert "closing quote is probably missing" in problem.message
    assert str(err.value).startswith(f"{path}:2: invalid YAML: expected <block end>")


def test_seed_with_the_quote_fixed_loads(tmp_path: Path) -> None:
    path = tmp_path / "smallchain.yaml"
    path.write_text(SEED)
    for source in (path, str(path)):
        manifest = load_manifest(source)
        assert [len(manifest.llms), len(manifest.agents), len(manifest.tools), len(manifest.tasks),
                len(manifest.runs)] == [1, 2, 2, 1, 1]
        # calculator_operator names no llm: fine, as there is exactly one.
        assert manifest.agents[1].llm is None
        assert manifest.tools[1].executor is not None
        assert manifest.tools[1].executor.kind == "python"


def test_undefined_llm_names_file_line_and_field() -> None:
    text = SEED.replace("      - add\n", "      - add\n    llm: nope\n")
    problem = only_problem(text)
    line = line_of(text, "llm: nope")
    assert str(problem) == (f"smallchain.yaml:{line}: agents[1].llm: "
                            "agent 'calculator_operator' uses llm 'nope', which is not defined")


def test_unknown_agent_in_a_task() -> None:
    text = SEED.replace("    agent: assistant\n", "    agent: nobody\n")
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, "agent: nobody"), "tasks[0].agent")
    assert "'nobody'" in problem.message


def test_missing_tool_and_delegate() -> None:
    text = SEED.replace("      - add\n", "      - add\n      - multiply_all\n").replace(
        'agent: "calculator_operator"', "agent: calculator")
    problems = problems_of(text)
    assert [(p.line, p.where) for p in problems] == [
        (line_of(text, "agent: calculator"), "agents[0].tools[0].agent"),
        (line_of(text, "- multiply_all"), "agents[1].tools[1]"),
    ]
    assert "tool 'multiply_all', which is not defined" in problems[1].message


def test_duplicate_name() -> None:
    text = SEED.replace("  - name: subtract\n", "  - name: add\n")
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, "- name: add", 2), "tools[1].name")
    assert "duplicate name 'add'" in problem.message


def test_wrong_type_says_what_was_expected_and_what_was_given() -> None:
    text = SEED.replace("    model: gpt-4o\n", '    model: gpt-4o\n    max_retries: "lots"\n')
    problem = only_problem(text)
    assert str(problem) == (f"smallchain.yaml:{line_of(text, 'max_retries')}: llms[0].max_retries: "
                            "expected an integer, got the string 'lots'")


def test_number_where_text_belongs_gets_a_hint() -> None:
    text = SEED.replace("      - add\n", "      - 42\n")
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, "- 42"), "agents[1].tools[0]")
    assert problem.message == "expected a string or a mapping, got the number 42 (quote it to make it text)"


def test_missing_field_is_shown_at_its_mapping() -> None:
    text = SEED.replace('    user_message: "add (3 + 4) and (5 + 3) and add the results"\n', "")
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, '- name: "do_some_math"'), "tasks[0].user_message")
    assert problem.message == "missing required field 'user_message'"


def test_unknown_field_and_section_and_model_rule_together() -> None:
    text = SEED.replace("    builtin: add\n", "    builtin: add\n    colour: red\n").replace(
        "      python: #", "      bash: {command: 'true'}\n      python: #") + "\nschedules: []\n"
    problems = problems_of(text)
    assert [(p.line, p.where) for p in problems] == [
        (line_of(text, "colour: red"), "tools[0].colour"),
        (line_of(text, "executor:"), "tools[1].executor"),
        (line_of(text, "schedules:"), "schedules"),
    ]
    assert problems[0].message == "unknown field 'colour'"
    assert "exactly one of: python, bash, node, webhook" in problems[1].message
    assert "unknown section 'schedules'" in problems[2].message


def test_agent_without_llm_among_two_llms() -> None:
    text = SEED.replace("llms:\n", "llms:\n  - {name: other, model: gpt-4o-mini}\n")
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, "- name: calculator_operator"), "agents[1].llm")
    assert "set `llm:`" in problem.message


def test_known_names_may_be_referenced() -> None:
    text = "tasks:\n  - name: t\n    agent: assistant\n    user_message: hi\nruns:\n  - {name: r, task: t}\n"
    assert only_problem(text).where == "tasks[0].agent"
    manifest = load_manifest_text(text, known_agents={"assistant"})
    assert manifest.tasks[0].agent == "assistant"


def test_top_level_must_be_a_mapping() -> None:
    assert "got a list" in only_problem("- llms\n").message
    assert "the file is empty" in only_problem("# nothing yet\n").message


def test_an_emptied_section_means_no_entries() -> None:
    manifest = load_manifest_text("llms:\n  - {name: x, model: m}\ntools:\n  # - name: add\n")
    assert manifest.tools == []


def test_duplicate_yaml_keys_are_reported() -> None:
    text = SEED.replace('    llm: "gpt-4o"\n', '    llm: "gpt-4o"\n    llm: other\n')
    problem = only_problem(text)
    assert (problem.line, problem.where) == (line_of(text, "llm: other"), "agents[0]")
    first = line_of(text, 'llm: "gpt-4o"')
    assert f"duplicate key 'llm' (first on line {first})" in problem.message


def test_a_dict_source_has_fields_but_no_lines() -> None:
    with pytest.raises(ManifestError) as err:
        load_manifest({"llms": [{"name": "x", "model": "m", "max_retries": "lots"}]})
    assert str(err.value) == "<dict>: llms[0].max_retries: expected an integer, got the string 'lots'"
    assert load_manifest({"llms": [{"name": "x", "model": "m"}]}).llms[0].name == "x"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the file"):
        load_manifest(tmp_path / "absent.yaml")


def test_the_loader_does_not_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_URL", "https://secret.example")
    manifest = load_manifest_text("llms:\n  - {name: x, model: m, base_url: '${SECRET_URL}'}\n")
    assert manifest.llms[0].base_url == "${SECRET_URL}"


def test_expand_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", "abc")
    monkeypatch.delenv("SMALLCHAIN_TEST_UNSET", raising=False)
    value = {"h": {"Authorization": "Bearer ${TOKEN}"}, "l": ["${TOKEN}", 3, None], "k": "$${TOKEN} ${ x }"}
    assert expand_env(value) == {"h": {"Authorization": "Bearer abc"}, "l": ["abc", 3, None],
                                 "k": "${TOKEN} ${ x }"}
    with pytest.raises(ValueError, match=r"^environment variable SMALLCHAIN_TEST_UNSET is not set "
                                         r"\(referenced as \$\{SMALLCHAIN_TEST_UNSET\}\)$"):
        expand_env(["ok", {"x": "${SMALLCHAIN_TEST_UNSET}"}])
