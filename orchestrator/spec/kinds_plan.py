"""The `plan` step: a planner (LLMCompiler, Adaptive Graph of Thoughts, static) writes
more of the graph at run time. Implemented by `planners/` through the registry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.spec.base import TOP_P_DOC, Integer, Number, OptionalNumber, StepBase


class PlanStep(StepBase):
    """Let a planner write steps at run time; its output is the plan's final answer."""

    kind: Literal["plan"] = "plan"
    planner: str = Field("llmcompiler", description="llmcompiler | agot | static | a registered name")
    goal: str = Field(description="Jinja2 template: the question or task to plan for.")
    model: str = Field("default", description="Model alias used by the planner.")
    joiner_model: str | None = Field(None, description="Model alias of the joiner (default: model).")
    tools: list[str] = Field(default_factory=list,
                             description="Tools the plan may call (empty: every known tool).")
    format: Literal["text", "json"] = Field("text", description="Plan format asked of the LLM.")
    max_replans: Integer = Field(2, ge=0, le=20,
                                 description="New plans the joiner may ask for after the first.")
    max_plan_steps: Integer = Field(
        32, ge=1, le=1000,
        description="Most actions in one plan (llmcompiler), thoughts in one graph (agot, all "
                    "layers together); a static plan only when set on its step.")
    max_plan_repairs: Integer = Field(2, ge=0, le=10,
                                      description="Times a rejected plan (or an unreadable joiner "
                                              "answer) is asked for again, with the error.")
    plan_timeout_s: OptionalNumber = Field(600, gt=0, description="Most seconds one planner "
                                           "LLM call may take (a plan's stream, an AGoT call, "
                                           "the joiner); stops a planner that stalls or "
                                           "streams forever. null: no bound.")
    max_tokens: Integer = Field(512, ge=1, le=1_000_000)
    temperature: Number = Field(0.0, ge=0, le=2)
    top_p: OptionalNumber = Field(None, gt=0, le=1, description=TOP_P_DOC)
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Planner settings. llmcompiler: stream_dispatch "
                                                "(default true), examples, direct_answer "
                                                "(default false: a plan may end with "
                                                "join($N), skipping the joiner when every "
                                                "action succeeds). agot: max_depth (1), "
                                                "max_layers (3), max_nodes_per_layer (3), "
                                                "max_thought_chars (500). "
                                                "static: steps, output.")

    #: fields rendered as Jinja2 templates before the executor sees them
    template_fields = ("goal",)
