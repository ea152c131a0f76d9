"""Lifecycle diagrams: drawn from the declaration, committed, and checked for drift.

The committed files in ``diagrams/`` are the goldens: the DOT and Mermaid text the
code makes today must equal them byte for byte.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine import cli
from statemachine.cli import main
from statemachine.diagrams import (
    EdgeKind,
    GraphvizMissing,
    build_diagram,
    check,
    lifecycle_diagrams,
    overlay,
    render,
    text_files,
    to_dot,
    to_mermaid,
    trace_log,
)
from statemachine.diagrams.trace import UnknownSubject, trace_lines
from statemachine.engine import INITIAL, Action, Domain, Guard, Lifecycle, State, Transition
from statemachine.lifecycles import DOMAIN, ORDER, PROJECT_PARTNER, PROMOTION
from statemachine.timeutil import format_instant, parse_instant

T0 = parse_instant("2026-03-01T10:00:00Z")

ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = ROOT / "diagrams"
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
NAMES = ("ad", "ad_group", "campaign", "order", "project_creator", "project_partner", "promotion")


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch) -> None:
    """``main`` configures structlog for a terminal; in process that would point every
    later test's logger at this test's captured stderr."""
    monkeypatch.setattr(cli, "_configure_logging", lambda verbose: None)


def edges(lifecycle: Lifecycle) -> dict[tuple[str, str, str], object]:
    return {(e.source, e.dest, e.trigger): e for e in build_diagram(lifecycle).edges}


# -- the committed files are the goldens ------------------------------------------------
def test_committed_dot_and_mermaid_equal_what_the_code_makes() -> None:
    problems = check(DIAGRAMS)
    assert not problems, (
        "diagrams/ is out of date: "
        + ", ".join(f"{name} ({why})" for name, why in problems)
        + ". Run `python -m statemachine diagrams` and commit diagrams/."
    )


def test_one_file_per_lifecycle_and_format_is_committed() -> None:
    names = {f"{n}.{ext}" for n in NAMES for ext in ("dot", "mmd", "svg")}
    assert names <= {p.name for p in DIAGRAMS.iterdir()}
    # and the Ads Manager hierarchy (issue 14): DOT checked, SVG rendered
    assert {"ads_manager.dot", "ads_manager.svg"} <= {p.name for p in DIAGRAMS.iterdir()}
    assert set(text_files()) == {n for n in names if not n.endswith(".svg")} | {"ads_manager.dot"}


def test_the_check_reports_a_changed_a_missing_and_a_stray_file(tmp_path: Path) -> None:
    for name, text in text_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert check(tmp_path) == []
    (tmp_path / "order.dot").write_text(text_files()["order.dot"].replace("agreed", "agreeed"))
    (tmp_path / "promotion.mmd").unlink()
    (tmp_path / "old.dot").write_text("digraph {}\n")
    assert check(tmp_path) == [("order.dot", "differs"), ("promotion.mmd", "missing"),
                               ("old.dot", "made by no lifecycle")]


def test_check_command_exits_1_listing_the_drifted_files(tmp_path: Path, capsys) -> None:
    assert main(["diagrams", "--format", "dot", "--format", "mermaid", "--out", str(tmp_path)]) == 0
    assert main(["diagrams", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "order.mmd").write_text("flowchart TB\n")
    capsys.readouterr()
    assert main(["diagrams", "--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'order.mmd'}: differs" in err
    assert "order.dot" not in err
    assert "python -m statemachine diagrams" in err


def test_same_declaration_same_bytes_whatever_the_domain_order() -> None:
    reversed_domain = Domain(tuple(reversed(DOMAIN.lifecycles)), DOMAIN.variant_field)
    assert text_files(reversed_domain) == text_files()
    assert [d.name for d in lifecycle_diagrams()] == list(NAMES)


# -- what a diagram shows ----------------------------------------------------------------
def test_every_state_is_a_node_initial_and_finals_marked() -> None:
    for lc in DOMAIN.lifecycles:
        nodes = {n.name: n for n in build_diagram(lc).nodes}
        assert list(nodes) == [s.name for s in lc.states]
        assert [n for n, node in nodes.items() if node.initial] == [lc.initial]
        assert {n for n, node in nodes.items() if node.final} == {s.name for s in lc.states if s.final}


def test_every_declared_transition_is_an_edge_and_nothing_else() -> None:
    for lc in DOMAIN.lifecycles:
        declared = {(src, t.dest, t.trigger) for t in lc.transitions for src in t.sources}
        assert set(edges(lc)) == declared, lc.name


def test_labels_read_trigger_guards_then_money() -> None:
    order = edges(ORDER)
    assert order[(INITIAL, "agreed", "create")].label == (
        "create [project active, fee > 0, before deadline]")  # record_agreement has no label
    assert order[("submitted", "approved", "approve")].label == "approve / release fee"
    assert order[("agreed", "approved", "submit")].label == (
        "submit [before deadline, project not winding down, auto review] / release fee")
    assert order[("submitted", "rejected", "reject")].label == "reject"


def test_money_includes_the_destinations_entry_actions_but_not_on_a_self_loop() -> None:
    order = edges(ORDER)
    assert order[("submitted", "deemed_approved", "deem_approve")].effects == ("release fee",)
    assert order[("rejected", "expired", "expire")].effects == ("refund 100 %",)
    assert order[("in_progress", "cancelled", "cancel")].effects == ("refund 90 / 50 / 100 % by policy",)
    promotion = edges(PROMOTION)
    assert promotion[("running", "running", "spend")].effects == ("spent += amount",)
    assert promotion[("running", "completed", "spend")].effects == (
        "spent += amount", "charge spent, release rest")
    assert promotion[("in_review", "turned_off", "turn_off")].effects == ("charge spent, release rest",)
    partner = edges(PROJECT_PARTNER)
    assert partner[("winding_down", "cancelled", "order_closed")].effects == (
        "refund per policy, notify, credit",)


def test_timer_edges_carry_their_delay_and_internal_ones_their_description() -> None:
    order, promotion, partner = edges(ORDER), edges(PROMOTION), edges(PROJECT_PARTNER)
    deem = order[("submitted", "deemed_approved", "deem_approve")]
    assert (deem.kind, deem.when) == (EdgeKind.TIMER, "after 14 days")
    for source in ("agreed", "in_progress", "rejected"):
        expire = order[(source, "expired", "expire")]
        assert (expire.kind, expire.when) == (EdgeKind.TIMER, "at content deadline")
    assert promotion[("running", "completed", "end")].when == "at end time"
    cancel = order[("submitted", "cancelled", "cancel")]
    assert (cancel.kind, cancel.when) == (EdgeKind.INTERNAL, "")
    assert cancel.description == "the project's cancellation took effect"
    assert partner[("winding_down", "cancelled", "order_closed")].kind is EdgeKind.INTERNAL
    assert order[("submitted", "approved", "approve")].kind is EdgeKind.EVENT


def test_a_conditional_transition_is_one_fork_with_guarded_branches() -> None:
    # Issue 17: the winding-down guard stops only merely agreed orders, so only the fork
    # leaving agreed carries it (it once labelled the in_progress edge too).
    submit, started = (f for f in build_diagram(ORDER).forks if f.trigger == "submit")
    assert submit.sources == ("agreed",)
    assert submit.guards == ("before deadline", "project not winding down")
    assert (started.sources, started.guards) == (("in_progress",), ("before deadline",))
    for fork in (submit, started):
        assert [(b.dest, b.guards, b.effects) for b in fork.branches] == [
            ("approved", ("auto review",), ("release fee",)), ("submitted", ("else",), ())]
    accept = next(f for f in build_diagram(PROJECT_PARTNER).forks if f.trigger == "accept_cancellation")
    # Both branches have guards of their own: neither is an "else".
    assert [b.guards for b in accept.branches] == [("no open orders",), ("open orders remain",)]


def test_groups_become_clusters_and_subgraphs() -> None:
    assert [g for g, _ in build_diagram(ORDER).groups] == ["open", "settled"]
    dot, mermaid = to_dot(build_diagram(ORDER)), to_mermaid(build_diagram(ORDER))
    assert "subgraph cluster_open {" in dot and "subgraph cluster_settled {" in dot
    assert 'subgraph group_settled ["settled"]' in mermaid


def _attrs(dot: str, start: str) -> str:
    """The attribute list of the DOT statement starting with ``start``."""
    line = next(x for x in dot.splitlines() if x.strip().startswith(start))
    return line


def test_dot_draws_finals_double_timers_dashed_internal_dotted() -> None:
    dot = to_dot(build_diagram(ORDER))
    assert "peripheries=2" in _attrs(dot, "approved [")
    assert "peripheries" not in _attrs(dot, "submitted [")
    assert "shape=circle" in _attrs(dot, f"{INITIAL} [")
    assert "style=dashed" in _attrs(dot, "submitted -> deemed_approved")
    assert "(after 14 days)" in _attrs(dot, "submitted -> deemed_approved")
    assert "style=dotted" in _attrs(dot, "cancel_8_junction -> cancelled")
    assert "style" not in _attrs(dot, "submitted -> rejected")
    assert "fee &gt; 0" in dot  # HTML labels are escaped


def test_mermaid_styles_links_by_kind_and_escapes_labels() -> None:
    text = to_mermaid(build_diagram(ORDER))
    assert text.startswith('---\ntitle: "Order"\n---\nflowchart TB\n')
    assert 'submitted -.->|"deem_approve (after 14 days)<br>/ release fee"| deemed_approved' in text
    assert "fee #gt; 0" in text and "fee > 0" not in text
    links = [x for x in text.splitlines() if re.search(r" (-->|---|-\.->|-\.-)", x)]
    styled = sorted(int(i) for x in re.findall(r"linkStyle ([\d,]+)", text) for i in x.split(","))
    assert styled == list(range(len(links)))  # every link styled exactly once
    assert "class approved,deemed_approved,expired,cancelled final" in text


def test_mermaid_title_with_a_colon_stays_valid_yaml() -> None:
    view = overlay(build_diagram(ORDER), trace_log(EXAMPLE, "order/O-404"))
    assert to_mermaid(build_diagram(ORDER), view).startswith(
        '---\ntitle: "Order: order/O-404, now approved"\n---\n')


# -- rendering through the real Graphviz --------------------------------------------------
@needs_dot
@pytest.mark.parametrize("name", NAMES)
def test_rendered_svg_is_xml_naming_every_state_and_trigger(name: str) -> None:
    lc = DOMAIN.lifecycle(name)
    svg = render(to_dot(build_diagram(lc)), "svg")
    assert b"Generated by graphviz version" not in svg
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    words = set(re.findall(r"[a-z_]+", texts))
    assert {s.name for s in lc.states} <= words
    assert {t.trigger for t in lc.transitions} <= words


@needs_dot
def test_png_renders() -> None:
    assert render(to_dot(build_diagram(PROMOTION)), "png").startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_diagrams_command_writes_svg_dot_and_mermaid_by_default(tmp_path: Path, capsys) -> None:
    assert main(["diagrams", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(f"{n}.{ext}" for n in NAMES for ext in ("dot", "mmd", "svg")),
         "ads_manager.dot", "ads_manager.svg"])
    ET.fromstring((tmp_path / "order.svg").read_bytes())


def test_missing_dot_is_one_line_with_the_fix_and_text_is_still_written(
        tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["diagrams", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'dot' was not found" in err and "apt-get install graphviz" in err
    assert {p.suffix for p in (tmp_path / "out").iterdir()} == {".dot", ".mmd"}
    with pytest.raises(GraphvizMissing):
        render("digraph {}", "svg")
    # DOT and Mermaid never need the binary.
    assert main(["diagrams", "--format", "dot", "--format", "mermaid", "--out", str(tmp_path / "t")]) == 0
    assert main(["diagram", str(EXAMPLE), "order/O-404", "--format", "mermaid"]) == 0
    assert main(["diagram", str(EXAMPLE), "order/O-404", "--out", str(tmp_path / "x.svg")]) == 2


def test_missing_dot_from_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "statemachine", "diagrams", "--format", "png",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, timeout=120,
                          env={"PATH": str(tmp_path / "empty")}, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "error: Graphviz 'dot' was not found on PATH; it is needed for png: "
        "install Graphviz: apt-get install graphviz (or brew install graphviz)"]


# -- an entity's path ----------------------------------------------------------------------
def test_trace_numbers_the_steps_with_their_event_ids() -> None:
    trace = trace_log(EXAMPLE, "order/O-404")
    assert (trace.lifecycle, trace.state) == ("order", "approved")
    assert [s.label for s in trace.steps] == [
        "1: create (evt-015)", "2: start (evt-031)", "3: submit (evt-059)", "4: reject (evt-063)",
        "5: resubmit (evt-064)", "6: approve (evt-065)"]


def test_trace_names_timers_and_cascades() -> None:
    assert trace_log(EXAMPLE, "order/O-102").steps[-1].label == (
        "3: deem_approve (timer deemed_approval, armed by evt-024)")
    assert trace_log(EXAMPLE, "order/O-201").steps[-1].label == "2: cancel (evt-055 via project/P-200)"
    project = trace_log(EXAMPLE, "project/P-400")
    assert project.lifecycle == "project_partner" and project.state == "cancelled"
    assert project.steps[-1].label == "5: order_closed (evt-065 via order/O-404)"


def test_entity_view_overlays_the_numbered_path(capsys) -> None:
    assert main(["diagram", str(EXAMPLE), "order/O-404", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph order {")
    for label in ("1: create (evt-015)", "2: start (evt-031)", "3: submit (evt-059)",
                  "4: reject (evt-063)", "5: resubmit (evt-064)", "6: approve (evt-065)"):
        assert label in dot
    assert "order/O-404, now approved" in dot
    approved = _attrs(dot, "approved [")
    assert "fillcolor=\"#2b6cb0\"" in approved and "now" in approved
    # The taken edges are in the path colour, the others faded.
    assert "penwidth=2.6" in _attrs(dot, "submitted -> rejected")
    assert "#a0aec0" in _attrs(dot, "submitted -> deemed_approved")


def test_entity_view_in_mermaid_styles_the_path(capsys) -> None:
    assert main(["diagram", str(EXAMPLE), "project/P-400", "--format", "mermaid"]) == 0
    text = capsys.readouterr().out
    assert "5: order_closed (evt-065 via order/O-404)" in text
    assert "class cancelled current" in text
    assert re.search(r"linkStyle [\d,]+ stroke:#2b6cb0,stroke-width:3px", text)


@needs_dot
def test_entity_view_svg_goes_to_a_file_named_after_the_subject(tmp_path: Path, monkeypatch,
                                                                 capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["diagram", str(EXAMPLE), "project/P-400"]) == 0
    assert capsys.readouterr().out.strip() == "project_P-400.svg"
    root = ET.fromstring((tmp_path / "project_P-400.svg").read_bytes())
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "4: accept_cancellation (evt-056)" in texts


def test_unknown_subject_and_unreadable_log_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["diagram", str(EXAMPLE), "order/O-999", "--format", "dot"]) == 2
    assert capsys.readouterr().err == f"error: no entity order/O-999 in {EXAMPLE}\n"
    assert main(["diagram", str(tmp_path / "nope.jsonl"), "order/O-1", "--format", "dot"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {tmp_path / 'nope.jsonl'}: ")


def test_an_overlay_refuses_a_trace_of_another_lifecycle() -> None:
    with pytest.raises(ValueError, match="runs order, not promotion"):
        overlay(build_diagram(PROMOTION), trace_log(EXAMPLE, "order/O-404"))


# -- merging and splitting, on small declarations ------------------------------------------
def _nothing(ctx):  # an action with no effect
    return ()


def _lifecycle(transitions: tuple[Transition, ...], states: tuple[State, ...]) -> Lifecycle:
    return Lifecycle(
        name="toy", kind="toy", title="Toy", states=states, transitions=transitions,
        guards=(Guard("g1", lambda ctx: True, "no", "one"), Guard("g2", lambda ctx: True, "no", "two")),
        actions=(Action("pay", _nothing, "pay"), Action("log", _nothing, "")),
    )


def test_parallel_transitions_between_the_same_states_merge_into_one_arrow() -> None:
    toy = _lifecycle(
        (Transition("make", (INITIAL,), "a", actions=("log",)),
         Transition("go", ("a",), "b", guards=("g1",), actions=("pay",)),
         Transition("go", ("a",), "b", guards=("g2",))),
        (State("a"), State("b", final=True)),
    )
    diagram = build_diagram(toy)
    assert [e.label for e in diagram.edges] == ["make", "go [one or two] / pay"]


def test_sources_that_run_different_entry_actions_are_drawn_apart() -> None:
    # From a, entering b runs its entry action; from b (a self-loop) it does not.
    toy = _lifecycle(
        (Transition("make", (INITIAL,), "a"), Transition("go", ("a", "b"), "b", guards=("g1",)),
         Transition("stop", ("b",), "c", guards=("g2",), actions=("log",))),
        (State("a"), State("b", on_enter=("pay",)), State("c", final=True)),
    )
    forks = [f for f in build_diagram(toy).forks if f.trigger == "go"]
    assert [(f.sources, f.branches[0].effects or f.effects) for f in forks] == [
        (("a",), ("pay",)), (("b",), ())]


# -- the diagram agrees with the engine, whatever happens -----------------------------------
ORDERS = ("order/O-1", "order/O-2")
ACTIONS = (
    [(t, o, {}) for o in ORDERS for t in ("order.started", "order.submitted", "order.approved",
                                          "order.rejected", "order.resubmitted")]
    + [(f"project.cancellation_{verb}", "project/P", {"by": by})
       for verb in ("requested", "accepted", "declined", "withdrawn") for by in ("advertiser", "provider")]
    + [("project.cancellation_reviewed", "project/P", {"approved": a}) for a in (True, False)]
    + [("project.completed", "project/P", {}), ("promotion.approved", "promotion/PR", {}),
       ("promotion.spent", "promotion/PR", {"amount": "40.00"}),
       ("promotion.turned_off", "promotion/PR", {})]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["creator", "partner"]),
       review=st.sampled_from(["manual", "auto"]),
       script=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 200)), max_size=25))
def test_every_step_of_any_history_is_a_numbered_edge_of_its_diagram(kind, review, script) -> None:
    """Random histories (timers and cascades included): every step the engine takes
    is an edge of the diagram, and the path is numbered and connected."""
    deadline, end = format_instant(T0 + timedelta(days=20)), format_instant(T0 + timedelta(days=9))
    setup = [
        (("project.created", "project/P", {"kind": kind, "currency": "USD", "deadline": deadline}), 0),
        (("promotion.created", "promotion/PR", {"budget": "100.00", "currency": "USD", "end": end}), 0),
        *((("order.agreed", o, {"project": "P", "fee": "50.00", "review": review}), 0) for o in ORDERS),
    ]
    time, lines = T0, []
    for (type_, subject, data), hours in setup + script:
        time += timedelta(hours=hours, minutes=1)
        envelope = {"id": f"e{len(lines)}", "time": format_instant(time), "type": type_,
                    "subject": subject, **({"data": data} if data else {})}
        lines.append((len(lines) + 1, json.dumps(envelope).encode()))
    for subject in ("project/P", "promotion/PR", *ORDERS):
        trace = trace_lines(lines, subject, as_of=time + timedelta(days=30))
        diagram = build_diagram(DOMAIN.lifecycle(trace.lifecycle))
        view = overlay(diagram, trace)  # KeyError if a step is not an edge of the diagram
        steps = trace.steps
        assert [s.number for s in steps] == list(range(1, len(steps) + 1))
        assert steps[0].source == INITIAL and steps[-1].dest == trace.state
        assert all(a.dest == b.source for a, b in itertools.pairwise(steps))
        assert sum(len(v) for v in view.by_fork.values()) == len(steps)
        dot = to_dot(diagram, view)
        assert all(escape(step.label) in dot for step in steps)


def test_a_subject_the_log_never_created_is_unknown() -> None:
    with pytest.raises(UnknownSubject, match="no entity order/O-1 in the log"):
        trace_lines([], "order/O-1")
