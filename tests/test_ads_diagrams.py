"""The Ads Manager in diagrams: the hierarchy drawn from the declaration, and a
replayed campaign's path with its children's states."""

from __future__ import annotations

from html import escape
from pathlib import Path

from statemachine.diagrams import build_diagram, overlay, to_dot, to_mermaid
from statemachine.diagrams.files import text_files
from statemachine.diagrams.hierarchy import hierarchy_dot, hierarchy_lifecycles
from statemachine.diagrams.trace import trace_log
from statemachine.engine import Domain
from statemachine.lifecycles import AD, AD_GROUP, CAMPAIGN, DOMAIN, ORDER, PROMOTION, ads

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ads_manager.jsonl"


def test_the_hierarchy_lists_the_levels_parents_first_with_cascades_and_the_rules() -> None:
    assert hierarchy_lifecycles(DOMAIN) == [CAMPAIGN, AD_GROUP, AD]
    dot = text_files()["ads_manager.dot"]
    assert "campaign -> ad_group" in dot and "ad_group -> ad" in dot
    for label in ("deleted: delete children", "completed: complete children",
                  "turn_off: reconcile owners", "timer: end at end time"):
        assert label in dot
    for status, why in ads.STATUS_RULES:
        assert escape(status) in dot and escape(why) in dot
    assert dot == hierarchy_dot(DOMAIN, ads.STATUS_RULES, "Ads Manager")


def test_a_domain_without_derived_statuses_has_no_hierarchy_file() -> None:
    domain = Domain((ORDER, PROMOTION))
    assert hierarchy_lifecycles(domain) == []
    assert "ads_manager.dot" not in text_files(domain)


def test_a_replayed_campaign_shows_its_path_and_its_childrens_states() -> None:
    trace = trace_log(EXAMPLE, "campaign/C-100")
    assert trace.state == "completed"
    assert [s.trigger for s in trace.steps][:2] == ["create", "reconcile"]
    assert trace.steps[-1].trigger == "end" and trace.steps[-1].timer == "campaign_end"
    assert trace.descendants == (
        ("ad_group/G-101", "completed", "completed"), ("ad/A-101", "deleted", "deleted"),
        ("ad_group/G-102", "completed", "completed"), ("ad/A-102", "completed", "completed"))
    view = overlay(build_diagram(CAMPAIGN), trace)
    dot = to_dot(build_diagram(CAMPAIGN), view)
    assert "its children now" in dot and "ad/A-101" in dot
    assert "ad/A-101: deleted (deleted)" in to_mermaid(build_diagram(CAMPAIGN), view)


def test_children_mid_story_show_their_effective_status() -> None:
    lines = EXAMPLE.read_bytes().splitlines()[:9]  # up to G-102 turned on under the off campaign
    from statemachine.diagrams.trace import trace_lines

    trace = trace_lines(enumerate(lines, 1), "campaign/C-100")
    assert trace.state == "off"
    assert {s: (own, eff) for s, own, eff in trace.descendants} == {
        "ad_group/G-101": ("on", "off_by_campaign"), "ad/A-101": ("on", "off_by_campaign"),
        "ad_group/G-102": ("on", "off_by_campaign"), "ad/A-102": ("on", "off_by_campaign")}
    assert trace_log(EXAMPLE, "ad/A-102").descendants == ()
