"""Each action written after <END_OF_PLAN> is reported at its line, not only the first."""

from __future__ import annotations

from planners.llmcompiler import parse_plan
from planners.plan import PlanBuilder, PlanProblem
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog


def test_every_action_after_the_end_is_reported(catalog: ToolCatalog) -> None:
    plan = ('1. search("a")\n2. join()\n<END_OF_PLAN>\nThat is all.\n3. search("b")\n'
            '4. search("c")\n5. join()\n')
    found = [(p.line, p.code, p.message) for p in parse_plan(plan, catalog).problems]
    assert found == [(5, "after_end", "text after <END_OF_PLAN>: '3. search(\"b\")'"),
                     (6, "after_end", "text after <END_OF_PLAN>: '4. search(\"c\")'"),
                     (7, "after_end", "text after <END_OF_PLAN>: '5. join()'")]


def test_a_streamed_plan_reports_each_too(catalog: ToolCatalog) -> None:
    parser = TextPlanParser(PlanBuilder(catalog))
    parser.feed('1. search("a")\n2. join()<END_OF_PLAN>\n3. search("b")\n4. search("c")')
    events = parser.close()
    problems = [e for e in events if isinstance(e, PlanProblem)]
    assert [(p.line, p.code) for p in problems] == [(3, "after_end"), (4, "after_end")]
