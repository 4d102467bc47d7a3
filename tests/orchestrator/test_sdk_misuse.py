"""The SDK given values of the wrong type or shape: each is refused with Ponder's own error
(``StepDefinitionError``, ``SpecError``, ``ConfigError``) naming the value, before a run
starts or is recorded, where Python's ``AttributeError``/``TypeError`` escaped."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from orchestrator import Workflow, tool
from orchestrator.errors import ConfigError, SpecError, StepDefinitionError
from orchestrator.store import StoreHook, open_store

pytestmark = pytest.mark.anyio

SIM = {"default": {"backend": "simulated", "options": {"time_scale": 0}}}


def _one_step() -> Workflow:
    return Workflow("x", models=SIM).llm("a", prompt="q")


class _Recorder:
    """A hook that keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[Sequence[Any]] = []

    def __call__(self, events: Sequence[Any]) -> None:
        self.batches.append(events)


# -- the constructor and the loaders ------------------------------------------------------

@pytest.mark.parametrize(("inputs", "shown_as"), [
    (["a"], "list ['a']"),
    ("a", "str 'a'"),
    ([("a", "string")], "list [('a', 'string')]"),
])
def test_inputs_that_are_not_a_dict_are_a_step_definition_error(inputs: Any,
                                                                 shown_as: str) -> None:
    with pytest.raises(StepDefinitionError) as info:
        Workflow("x", inputs=inputs)
    assert str(info.value) == (
        "workflow 'x': `inputs` must be a dict of input names to types (such as "
        f"{{'question': 'string'}}), input fields or InputSpecs, not {shown_as}")


@pytest.mark.parametrize(("fields", "message"), [
    ({"models": ["default"]}, "workflow 'x': models: Input should be a valid dictionary"),
    ({"models": {"default": 5}}, "workflow 'x': models.default: Input should be a valid "
                                 "dictionary or instance of ModelConfig (got 5)"),
    ({"description": 5}, "workflow 'x': description: Input should be a valid string (got 5)"),
    # falsy values of the wrong type were dropped silently
    ({"description": 0}, "workflow 'x': description: Input should be a valid string (got 0)"),
    ({"description": []}, "workflow 'x': description: Input should be a valid string (got [])"),
])
def test_other_constructor_arguments_of_the_wrong_type_are_refused(fields: dict[str, Any],
                                                                   message: str) -> None:
    with pytest.raises(StepDefinitionError) as info:
        Workflow("x", **fields)
    assert str(info.value).startswith(message), str(info.value)


def test_empty_constructor_arguments_are_not_written_out() -> None:
    wf = Workflow("x", description="", inputs={}, models={})
    assert wf.to_yaml() == Workflow("x").to_yaml()
    assert "description" not in wf.spec.model_fields_set


@pytest.mark.parametrize(("load", "message"), [
    (lambda: Workflow.from_yaml_text(5),  # type: ignore[arg-type]
     "from_yaml_text: the text must be a str of YAML, not int 5: to load a file, use "
     "Workflow.from_yaml(path)"),
    (lambda: Workflow.from_yaml_text(b"name: x\n"),  # type: ignore[arg-type]
     "from_yaml_text: the text must be a str of YAML, not bytes b'name: x\\n': decode it "
     "first (data.decode())"),
    (lambda: Workflow.from_yaml_text("name: x\n", name=5),  # type: ignore[arg-type]
     "from_yaml_text: the name must be a str, not int 5"),
    (lambda: Workflow.from_yaml(None),  # type: ignore[arg-type]
     "from_yaml: the path must be a str or a Path, not NoneType None"),
])
def test_loaders_refuse_what_is_no_yaml_text_or_path(load: Callable[[], Any],
                                                     message: str) -> None:
    with pytest.raises(SpecError) as info:
        load()
    assert str(info.value) == message


# -- hooks ---------------------------------------------------------------------------------

def test_one_hook_alone_is_refused_before_the_run_saying_to_pass_a_list() -> None:
    hook = _Recorder()
    with pytest.raises(ConfigError) as info:
        _one_step().run_sync(hooks=hook)  # type: ignore[arg-type]
    assert str(info.value).startswith(
        "hooks: pass a list of hooks, such as hooks=[_Recorder(...)], not one hook alone")
    with pytest.raises(ConfigError, match=r"such as hooks=\[print\]"):
        _one_step().run_sync(hooks=print)  # type: ignore[arg-type]
    assert hook.batches == []  # nothing ran


@pytest.mark.parametrize("hooks", ["ab", {print: 1}, 5])
def test_hooks_that_are_no_list_are_refused(hooks: Any) -> None:
    with pytest.raises(ConfigError) as info:
        _one_step().run_sync(hooks=hooks)
    assert str(info.value).startswith("hooks: must be a list of functions of a batch of "
                                      f"events, not {type(hooks).__name__} ")


def test_hooks_may_be_none_or_any_iterable_of_hooks() -> None:
    assert _one_step().run_sync(hooks=None).ok
    hook = _Recorder()
    assert _one_step().run_sync(hooks=(h for h in [hook])).ok  # type: ignore[arg-type]
    assert hook.batches


# -- run ids -------------------------------------------------------------------------------

@pytest.mark.parametrize(("run_id", "message"), [
    (5, "run_id: must be a non-empty string (or None for a random id), not int 5"),
    ("", "run_id: must be a non-empty string (or None for a random id), not str ''"),
    ("a\x00b", "run_id 'a\\x00b': holds a NUL character, which no trace store can record"),
])
async def test_a_run_id_no_store_could_keep_is_refused_before_anything_is_recorded(
        run_id: Any, message: str) -> None:
    store = await open_store("memory://")
    try:
        hook = _Recorder()
        with pytest.raises(ConfigError) as info:
            await _one_step().run(run_id=run_id, hooks=[StoreHook(store), hook])
        assert str(info.value) == message
        assert hook.batches == []
        assert await store.list_runs() == []
    finally:
        await store.close()


def test_a_run_id_without_a_store_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="run_id: must be a non-empty string"):
        _one_step().run_sync(run_id=5)  # type: ignore[arg-type]
    assert _one_step().run_sync(run_id="mine/1").run_id == "mine/1"


def test_on_scheduler_must_be_callable() -> None:
    with pytest.raises(ConfigError) as info:
        _one_step().run_sync(on_scheduler=5)
    assert str(info.value) == "on_scheduler: must be a function of the scheduler, not int 5"


# -- tool names ----------------------------------------------------------------------------

def _plus_one(x: int) -> int:
    return x + 1


def _decorated(x: int) -> int:
    return x + 1


tool(name="plus one")(_decorated)  # as ``@tool(name=...)`` marks it


@pytest.mark.parametrize(("register", "bad"), [
    (lambda wf: wf.register_tool(_plus_one, name="a b"), "'a b'"),
    (lambda wf: wf.register_tool(_plus_one, name=""), "''"),
    (lambda wf: wf.register_tool(_plus_one, name="a\tb"), "'a\\tb'"),
    (lambda wf: wf.register_tool(_plus_one, name="a\x00"), "'a\\x00'"),
    (lambda wf: wf.register_tool(_decorated), "'plus one'"),  # the name @tool gave
    (lambda wf: wf.tool("s", _decorated, x=1), "'plus one'"),
])
def test_a_tool_name_no_step_or_planner_could_write_is_refused(
        register: Callable[[Workflow], Any], bad: str) -> None:
    wf = Workflow("x")
    with pytest.raises(ConfigError) as info:
        register(wf)
    assert str(info.value).endswith(
        "a tool's name must be one word, without spaces or control characters (such as "
        f"'word_count'), not {bad}")
    assert wf.registry.tools == {}


def test_as_tool_refuses_such_a_name_and_a_description_that_is_no_string() -> None:
    wf = _one_step()
    with pytest.raises(ConfigError, match=r"^as_tool: a tool's name must be one word.*'a b'$"):
        wf.as_tool("a b")
    with pytest.raises(ConfigError) as info:
        wf.as_tool(description=5)  # type: ignore[arg-type]
    assert str(info.value) == "as_tool: the description must be a string, not int 5"


def test_a_callable_without_a_name_needs_one() -> None:
    wf = Workflow("x", models=SIM)
    with pytest.raises(ConfigError, match=r"has no __name__ to serve it under: pass name="):
        wf.register_tool(functools.partial(_plus_one))
    wf.register_tool(functools.partial(_plus_one), name="plus")
    assert wf.tool("s", "plus", x=1).run_sync().output == 2


def test_unusual_but_usable_tool_names_still_register() -> None:
    wf = Workflow("x", models=SIM)
    wf.register_tool(_plus_one, name="lookup.v2-b")
    wf.tool("s", "lookup.v2-b", x=1)
    wf.tool("t", lambda x: x * 3, x=2)  # served as '<lambda>'
    assert wf.run_sync().output == {"s": 2, "t": 6}


async def test_replay_takes_its_hooks_as_run_does() -> None:
    """One hook given alone raised TypeError in `durable.replay` (and `durable.resume`,
    which takes them the same way)."""
    from orchestrator.errors import ConfigError as Refused
    from orchestrator.runtime.durable import replay
    from orchestrator.store import MemoryStore, StoreHook

    store = MemoryStore()
    ran = await _one_step().run(hooks=[StoreHook(store)])
    with pytest.raises(Refused, match=r"pass a list of hooks, such as hooks=\[print\]"):
        await replay(await store.events(ran.run_id), hooks=print)  # type: ignore[arg-type]
    assert [r.id for r in await store.list_runs()] == [ran.run_id]
