"""Parties that prove who they are (issue 16): the real uvicorn server with ``--auth``
tokens, on SQLite and on PostgreSQL.

Each forged-party case gets its 401 or 403, an RFC 9457 problem, and changes nothing:
the entity's version and state, the ledger and the stored row counts are the same
before and after. A bounded fuzz of tokens and bodies never gets a 5xx.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live import STORY_SKEW, Live

from statemachine.lifecycles import DOMAIN
from statemachine.service import create_app
from statemachine.service.auth import AuthError, Principal, Tokens, load_tokens
from statemachine.timeutil import format_instant

TOKENS = {
    "advertiser-A-1-token-0001": ("advertiser", "A-1"),
    "advertiser-A-2-token-0002": ("advertiser", "A-2"),
    "provider-C-1-token-00003": ("provider", "C-1"),
    "provider-C-2-token-00004": ("provider", "C-2"),
    "platform-ops-token-000005": ("platform", "OPS"),
}
ADV, ADV2, PROV, PROV2, PLAT = (f"Bearer {t}" for t in TOKENS)
T0 = datetime(2031, 5, 1, 10, tzinfo=UTC)
_clock = [T0]


def now() -> str:
    """Each event a minute after the one before (one engine clock for the module)."""
    _clock[0] += timedelta(minutes=1)
    return format_instant(_clock[0])


def event(ident: str, type_: str, subject: str, **data) -> dict:
    return {"id": ident, "time": now(), "type": type_, "subject": subject, "data": data}


@pytest.fixture
def auth_file(tmp_path):
    path = tmp_path / "auth.toml"
    path.write_text("".join(f'[tokens.{token}]\nparty = "{party}"\naccount = "{account}"\n\n'
                            for token, (party, account) in TOKENS.items()))
    return path


@pytest.fixture
def served(db, auth_file):
    app = create_app(db.target, auth=load_tokens(auth_file), drain_interval=None, timer_interval=None,
                     clock_skew=STORY_SKEW)
    with Live(app) as client:
        yield client


def post(client, body, token: str | None) -> object:
    headers = {"authorization": token} if token else {}
    return client.post("/events", json=body, headers=headers)


def ok(client, body, token):
    response = post(client, body, token)
    assert response.status_code == 200, response.text
    return response.json()


def setup_story(client) -> None:
    """A creator project P-1 (A-1 with C-1) in cancellation requested by the advertiser,
    with order O-1 submitted; a partner project P-2 whose cancellation is under review."""
    ok(client, event("p1", "project.created", "project/P-1", kind="creator", currency="USD",
                     deadline="2031-09-01T00:00:00Z", provider="C-1"), ADV)
    ok(client, event("p2", "project.created", "project/P-2", kind="partner", currency="USD",
                     deadline="2031-09-01T00:00:00Z", provider="C-1"), ADV)
    ok(client, event("a1", "order.agreed", "order/O-1", project="P-1", fee="300.00", review="manual"), ADV)
    ok(client, event("s1", "order.submitted", "order/O-1"), PROV)
    ok(client, event("r1", "project.cancellation_requested", "project/P-1"), ADV)
    ok(client, event("r2", "project.cancellation_requested", "project/P-2", by="advertiser"), ADV)


def snapshot(client) -> tuple:
    entities = []
    for subject in ("project/P-1", "project/P-2", "project/P-9", "order/O-1"):
        body = client.get(f"/entities/{subject}", headers={"authorization": PLAT}).json()
        entities.append((subject, body.get("state"), body.get("version")))
    ledger = client.get("/ledger", headers={"authorization": PLAT}).json()
    health = client.get("/health").json()
    return entities, ledger, health.get("inputs"), health.get("versions")


FORGED = [
    pytest.param(None, event("x1", "order.approved", "order/O-1"), 401, "unauthenticated", id="no token"),
    pytest.param("Bearer not-a-known-token-at-all", event("x2", "order.approved", "order/O-1"), 401,
                 "unauthenticated", id="unknown token"),
    pytest.param("Basic YWR2ZXJ0aXNlcjpwdw==", event("x3", "order.approved", "order/O-1"), 401,
                 "unauthenticated", id="not a bearer token"),
    pytest.param(ADV2, event("x4", "project.created", "project/P-9", kind="creator", currency="USD",
                             deadline="2031-09-01T00:00:00Z", advertiser="A-1"), 403, "forbidden",
                 id="an advertiser creating a project for another advertiser account"),
    pytest.param(ADV, event("x5", "project.cancellation_accepted", "project/P-1", by="provider"), 403,
                 "forbidden", id="an advertiser saying it is the provider"),
    pytest.param(ADV, event("x6", "project.cancellation_accepted", "project/P-1"), 403, "forbidden",
                 id="an advertiser accepting its own cancellation"),
    pytest.param(PROV, event("x7", "order.approved", "order/O-1"), 403, "forbidden",
                 id="a provider approving content"),
    pytest.param(ADV, event("x8", "project.cancellation_reviewed", "project/P-2", approved=True), 403,
                 "forbidden", id="an advertiser reviewing a partner cancellation"),
    pytest.param(PROV, event("x9", "project.cancellation_reviewed", "project/P-2", approved=True), 403,
                 "forbidden", id="a provider reviewing a partner cancellation"),
    pytest.param(ADV2, event("x10", "order.approved", "order/O-1"), 403, "forbidden",
                 id="an advertiser account that is not this project's"),
    pytest.param(PROV2, event("x11", "project.cancellation_accepted", "project/P-1"), 403, "forbidden",
                 id="a provider account that is not this project's"),
    pytest.param(PROV, event("x12", "project.cancellation_declined", "project/P-2", by="advertiser"), 403,
                 "forbidden", id="a provider saying it is the advertiser"),
]


@pytest.mark.parametrize(("token", "body", "status", "slug"), FORGED)
def test_a_forged_party_is_refused_and_changes_nothing(served, token, body, status, slug):
    setup_story(served)
    before = snapshot(served)
    response = post(served, {**body, "time": now()}, token)  # in order: only the party is wrong
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith(slug) and problem["status"] == status and problem["detail"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert snapshot(served) == before
    assert served.get("/entities/project/P-9", headers={"authorization": PLAT}).status_code == 404


def test_the_parties_act_as_declared_and_by_comes_from_the_token(served):
    setup_story(served)
    project = served.get("/entities/project/P-1", headers={"authorization": ADV}).json()
    assert project["data"]["advertiser"] == "A-1" and project["data"]["provider"] == "C-1"
    assert project["data"]["requested_by"] == "advertiser"  # filled in from the token
    # The platform reviews the partner cancellation; the provider accepts the creator one.
    assert ok(served, event("v2", "project.cancellation_reviewed", "project/P-2", approved=True),
              PLAT)["state"] == "cancellation_pending"
    accepted = ok(served, event("c1", "project.cancellation_accepted", "project/P-1"), PROV)
    assert accepted["state"] == "cancelled"
    assert [line["kind"] for line in served.get("/ledger", headers={"authorization": PROV}).json()["ledger"]]
    # Only the platform moves the clock; everyone may read.
    assert served.post("/clock", json={"time": "2031-06-01T00:00:00Z"},
                       headers={"authorization": ADV}).status_code == 403
    assert served.get("/health").status_code == 200  # probes need no token


def test_auth_files_are_checked_and_never_echo_a_token(tmp_path):
    bad = tmp_path / "bad.toml"
    cases = {
        '[tokens.short]\nparty = "advertiser"\naccount = "A-1"\n': "at least 16 characters",
        '[tokens.long-enough-token-0001]\nparty = "admin"\naccount = "A-1"\n': "party must be one of",
        '[tokens.long-enough-token-0001]\nparty = "advertiser"\n': "account must be",
        '[tokens.long-enough-token-0001]\nparty = "provider"\naccount = "C/1"\n': "account must be",
        'tokens = 1\n': "no [tokens.<token>] tables",
        '[tokens\n': "not TOML",
        '[tokens]\n': "declares no token",
    }
    for text, message in cases.items():
        bad.write_text(text)
        with pytest.raises(AuthError, match=message.replace("[", r"\[").replace(".", r"\.")) as info:
            load_tokens(bad)
        assert "long-enough-token" not in str(info.value)
    with pytest.raises(AuthError, match="cannot read"):
        load_tokens(tmp_path / "missing.toml")


def test_tokens_are_found_only_whole_and_only_as_bearer():
    tokens = Tokens({"a-token-of-sixteen-chars": Principal("platform", "OPS")})
    assert tokens.identify("Bearer a-token-of-sixteen-chars") == Principal("platform", "OPS")
    assert tokens.identify("bearer  a-token-of-sixteen-chars ") == Principal("platform", "OPS")
    for header in (None, "", "Bearer", "Bearer ", "Bearer a-token-of-sixteen-char",
                   "Bearer a-token-of-sixteen-charsX", "Token a-token-of-sixteen-chars"):
        assert tokens.identify(header) is None, header


def test_every_input_declares_who_may_send_it():
    for lifecycle in DOMAIN.lifecycles:
        for declared in lifecycle.inputs:
            assert declared.parties, (lifecycle.name, declared.type)
            assert set(declared.parties) <= {"advertiser", "provider", "platform"}


# -- fuzz: tokens and bodies never make a 5xx ----------------------------------------
_printable = st.text(alphabet=string.ascii_letters + string.digits + "-_.~+/= ", max_size=40)
tokens = st.one_of(st.none(), st.sampled_from([ADV, ADV2, PROV, PROV2, PLAT]),
                   _printable.map(lambda t: f"Bearer {t}"), _printable)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
types = st.sampled_from([i.type for lc in DOMAIN.lifecycles for i in lc.inputs] + ["x.y", ""])
subjects = st.sampled_from(["project/P-1", "project/P-2", "order/O-1", "order/O-2", "promotion/X", "p", ""])
data = st.fixed_dictionaries({}, optional={
    "by": st.sampled_from(["advertiser", "provider", "platform", "", 1]),
    "advertiser": st.sampled_from(["A-1", "A-2", "", None, 5]),
    "provider": st.sampled_from(["C-1", "C/2", None]),
    "project": st.sampled_from(["P-1", "P-2", "P/3", 7]),
    "fee": st.sampled_from(["10.00", "-1", "x", 3]), "review": st.sampled_from(["manual", "auto", 0]),
    "kind": st.sampled_from(["creator", "partner", "?"]), "currency": st.sampled_from(["USD", "XXX", 1]),
    "deadline": st.sampled_from(["2031-09-01T00:00:00Z", "soon", None]),
    "approved": st.sampled_from([True, False, "yes"]), "extra": json_values})
times = st.sampled_from(["2031-12-01T00:00:00Z", "2020-01-01T00:00:00Z", "x"])
envelopes = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=6), "type": types,
                                   "subject": subjects, "time": times, "data": data | json_values})
bodies = envelopes.map(lambda e: ("json", e)) | json_values.map(lambda v: ("json", v)) \
    | st.binary(max_size=40).map(lambda b: ("raw", b))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(token=tokens, body=bodies, path=st.sampled_from(["/events", "/events", "/clock", "/ledger"]))
def test_a_fuzz_of_tokens_and_bodies_never_gets_a_5xx(served, token, body, path):
    # A header value cannot end in blanks (httpx refuses to send it): strip them.
    headers = {"authorization": token.strip()} if token and token.strip() else {}
    how, payload = body
    if path == "/ledger":
        response = served.get(path, headers=headers)
    elif how == "json":
        response = served.post(path, json=payload, headers=headers)
    else:
        response = served.post(path, content=payload, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
