"""The spilled index of applied ids (``statemachine.engine.applied``): a dict in behaviour,
a file on disk in memory.

Tiny batches and filter capacities make flushes and filter growth happen within a
handful of operations; a high false positive rate sends many lookups to SQLite, so both
the filter path and the ``SELECT`` path are exercised.
"""

from __future__ import annotations

import gc
import io
import operator
import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.engine import applied
from statemachine.engine.applied import SpilledIds
from statemachine.replay import Replayer, to_json
from statemachine.replay.replayer import read_lines

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "collaborations.jsonl"

# Few distinct keys, so that sets, overwrites and deletes meet; NUL and non-ASCII included.
keys = st.text(alphabet="ab\x00é€😀", max_size=3)
# The engine's digests are ints below 2**60; bytes are kept too. Equal values of the two
# kinds never meet: 0 and b"" stay apart, as in a dict.
digests = st.one_of(st.binary(min_size=0, max_size=16),
                    st.integers(min_value=-(2**63), max_value=2**63 - 1))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, digests),
        st.tuples(st.just("get"), keys),
        st.tuples(st.just("getitem"), keys),
        st.tuples(st.just("del"), keys),
        st.tuples(st.just("pop"), keys),
        st.tuples(st.just("contains"), keys),
        st.tuples(st.just("setdefault"), keys, digests),
        st.tuples(st.just("update"), st.dictionaries(keys, digests, max_size=4)),
        st.tuples(st.just("len")),
        st.tuples(st.just("iter")),
        st.tuples(st.just("items")),
        st.tuples(st.just("values")),
        st.tuples(st.just("popitem")),
        st.tuples(st.just("flush")),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """What a call returned or which exception it raised, to compare dict and index."""
    try:
        return ("ok", call(*args))
    except (KeyError, TypeError) as exc:
        return (type(exc).__name__, None)


def fill(ids: SpilledIds, count: int, prefix: str = "e") -> dict[str, bytes]:
    content = {f"{prefix}-{n:08d}": n.to_bytes(16, "big") for n in range(count)}
    ids.update(content)
    return content


def disk_files() -> dict[str, int]:
    """This process's open regular files: descriptor -> size (Linux)."""
    files = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            size = os.fstat(int(fd)).st_size
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            files[f"{fd}:{target}"] = size
    return files


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")


# -- a dict in behaviour ------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(ops=operations, batch=st.integers(1, 4), capacity=st.integers(1, 3),
       rate=st.sampled_from([0.01, 0.9]))
def test_behaves_like_a_dict(ops: list[tuple[Any, ...]], batch: int, capacity: int, rate: float) -> None:
    model: dict[str, bytes] = {}
    with SpilledIds(batch=batch, capacity=capacity, false_positive_rate=rate) as ids:
        for op, *args in ops:
            if op == "set":
                model[args[0]] = args[1]
                ids[args[0]] = args[1]
            elif op == "get":
                assert ids.get(args[0]) == model.get(args[0])
                assert ids.get(args[0], b"default") == model.get(args[0], b"default")
            elif op == "getitem":
                assert outcome(operator.getitem, ids, args[0]) == outcome(operator.getitem, model, args[0])
            elif op == "del":
                assert outcome(operator.delitem, ids, args[0]) == outcome(operator.delitem, model, args[0])
            elif op == "pop":
                assert outcome(ids.pop, args[0]) == outcome(model.pop, args[0])
            elif op == "contains":
                assert (args[0] in ids) == (args[0] in model)
            elif op == "setdefault":
                assert ids.setdefault(args[0], args[1]) == model.setdefault(args[0], args[1])
            elif op == "update":
                ids.update(args[0])
                model.update(args[0])
            elif op == "len":
                assert len(ids) == len(model)
            elif op == "iter":
                assert list(ids) == sorted(model)  # code-point order, not insertion order
            elif op == "items":
                assert list(ids.items()) == sorted(model.items())
            elif op == "values":
                assert sorted(ids.values(), key=repr) == sorted(model.values(), key=repr)
            elif op == "popitem":
                popped = outcome(ids.popitem)
                if model:
                    key, value = popped[1]
                    assert model.pop(key) == value
                else:
                    assert popped == ("KeyError", None)
            elif op == "flush":
                ids.flush()
            elif op == "clear":
                ids.clear()
                model.clear()
        assert ids == model
        assert dict(ids) == model
        assert dict(ids.items()) == model
        assert set(ids) == set(model) == ids.keys()
        assert len(ids) == len(model)


def test_an_overwrite_replaces_the_digest_and_a_delete_forgets_both_copies() -> None:
    with SpilledIds(batch=100) as ids:
        ids["a"] = b"old"
        ids.flush()  # the old row is in the table ...
        ids["a"] = b"new"  # ... the new one still pending
        assert ids["a"] == b"new" and ids.get("a") == b"new" and len(ids) == 1
        ids["b"] = b"b"
        ids["a"] = b"newer"
        del ids["a"]  # pending and (stale) table row both go
        assert "a" not in ids and ids.get("a") is None and ids == {"b": b"b"}
        with pytest.raises(KeyError):
            del ids["a"]
        ids["a"] = b"again"  # its filter bits were never cleared: found again all the same
        assert ids == {"a": b"again", "b": b"b"}


def test_lookups_of_keys_that_are_not_strings_miss_as_in_a_dict() -> None:
    """SQLite would find the row '5' for the integer 5; a dict does not, nor may the index.
    Rate 0.9 sends most of these lookups past the filters to SQLite."""
    with SpilledIds(false_positive_rate=0.9, capacity=1000) as ids:
        ids.update({str(n): b"d" for n in range(1000)})
        ids.flush()
        assert all(n not in ids and ids.get(n) is None for n in range(1000))
        assert all(str(n) in ids for n in range(1000))
        with pytest.raises(KeyError):
            del ids[5]  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ids.get([])  # type: ignore[arg-type]  # unhashable, as a dict says


@pytest.mark.parametrize(("key", "value", "error"), [
    (5, b"d", TypeError),
    ("a", "text", TypeError),
    ("a", bytearray(b"d"), TypeError),
    ("a", True, TypeError),
    ("a", 2**63, OverflowError),
    ("a", -(2**63) - 1, OverflowError),
    ("lone \ud800 surrogate", b"d", UnicodeEncodeError),
])
def test_a_bad_key_or_digest_is_refused_at_once_and_nothing_is_stored(key: Any, value: Any,
                                                                        error: type[Exception]) -> None:
    with SpilledIds(batch=1) as ids:
        with pytest.raises(error):
            ids[key] = value
        assert len(ids) == 0 and key not in ids
        ids["fine"] = b"d"  # the next batch is not poisoned
        assert ids == {"fine": b"d"}


@pytest.mark.parametrize("option", [{"batch": 0}, {"capacity": 0}, {"false_positive_rate": 0.0},
                                    {"false_positive_rate": 1.0}, {"cache_kib": 0}])
def test_a_bad_option_is_refused(option: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(option))):
        SpilledIds(**option)


def test_initial_content_and_equality_with_mappings() -> None:
    content = {"x": b"1", "y": b"2"}
    with SpilledIds(content) as ids, SpilledIds(list(content.items())) as same:
        assert ids == content == same
        assert ids != {"x": b"1"} and ids != {"x": b"1", "y": b"3"}
        assert ("x", b"1") in ids.items() and ("x", b"2") not in ids.items()
        assert b"2" in ids.values()


def test_iteration_while_adding_never_yields_a_key_twice() -> None:
    with SpilledIds(batch=2) as ids:
        fill(ids, 10)
        seen = []
        for key in ids:
            seen.append(key)
            ids[key + "+"] = b"later"  # sorts right after key: met later in this very loop
            if len(seen) > 100:
                break
        assert len(seen) == len(set(seen))


def test_clear_forgets_everything_and_resets_the_filters() -> None:
    with SpilledIds(batch=3, capacity=2) as ids:
        empty = ids.filter_bytes
        fill(ids, 50)
        assert ids.filter_bytes > empty  # the filters grew with the ids
        ids.clear()
        assert len(ids) == 0 and ids == {} and "e-00000001" not in ids
        assert ids.filter_bytes == empty
        ids["e-00000001"] = b"back"
        assert ids == {"e-00000001": b"back"}


def test_filters_grow_to_stay_exact_past_their_capacity() -> None:
    with SpilledIds(batch=64, capacity=4, false_positive_rate=0.01) as ids:
        content = fill(ids, 5000)
        assert ids == content
        assert all(ids.get(key) == value for key, value in content.items())
        assert all(f"x-{n}" not in ids for n in range(5000))


# -- lifetime ------------------------------------------------------------------------------
def test_close_is_idempotent_and_any_later_use_raises() -> None:
    ids = SpilledIds({"a": b"1"})
    with ids as same:
        assert same is ids and not ids.closed
    assert ids.closed
    ids.close()
    for use in (lambda: ids.get("a"), lambda: ids["a"], lambda: "a" in ids, lambda: len(ids),
                lambda: list(ids), lambda: ids.items(), lambda: ids.clear(), ids.flush,
                lambda: ids.__setitem__("b", b"2"), lambda: ids.__delitem__("a")):
        with pytest.raises(ValueError, match="closed"):
            list(use())  # type: ignore[call-overload]
    assert "closed" in repr(ids)


def test_an_unclosed_index_does_not_leak_its_named_file(tmp_path: Path) -> None:
    ids = SpilledIds(directory=tmp_path)
    fill(ids, 10)
    assert len(list(tmp_path.iterdir())) == 1
    del ids
    gc.collect()
    assert list(tmp_path.iterdir()) == []


@needs_proc
def test_an_unclosed_index_releases_its_temporary_file() -> None:
    before = disk_files()
    ids = SpilledIds(cache_kib=64)
    fill(ids, 20_000)
    assert set(disk_files()) - set(before)
    del ids
    gc.collect()
    assert not set(disk_files()) - set(before)


# -- on disk, not in memory -----------------------------------------------------------------
@needs_proc
def test_the_rows_spill_to_a_deleted_temporary_file_beyond_the_page_cache() -> None:
    """``connect("")`` keeps the database in the page cache until it is full, then spills to
    a file SQLite unlinked on opening it (nothing to leak). 50,000 rows take ~1.5 MB."""
    before = disk_files()
    with SpilledIds(cache_kib=64) as ids:
        fill(ids, 50_000)
        new = {name: size for name, size in disk_files().items() if name not in before}
        assert len(new) == 1
        ((name, size),) = new.items()
        assert name.endswith("(deleted)")
        assert size > 16 * 64 * 1024  # many times the page cache: the rows are in the file
    assert not set(disk_files()) - set(before)


def test_with_a_directory_the_rows_go_to_a_named_file_removed_on_close(tmp_path: Path) -> None:
    with SpilledIds(cache_kib=64, directory=tmp_path) as ids:
        fill(ids, 50_000)
        (file,) = tmp_path.iterdir()
        assert file.stat().st_size > 16 * 64 * 1024
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_that_keeps_temporary_databases_in_memory_gets_a_named_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built with SQLITE_TEMP_STORE 2 or 3, ``connect("")`` would never spill."""
    monkeypatch.setattr(applied, "_temp_db_in_memory", lambda: True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with SpilledIds(cache_kib=64) as ids:
        fill(ids, 50_000)
        (file,) = tmp_path.iterdir()
        assert file.stat().st_size > 16 * 64 * 1024
    assert list(tmp_path.iterdir()) == []


def test_memory_stays_flat_with_a_million_ids() -> None:
    """A dict keeps ~150 bytes of Python objects per id; the index keeps its pending batch
    (Python objects, traced here) and its bloom filters (Rust memory, ``filter_bytes``).
    Tracing the last 100,000 of a million ids (tracing every allocation is slow): a dict
    would retain ~15 MB in that window, the index nothing beyond one batch."""
    count, traced = 1_000_000, 100_000
    with SpilledIds() as ids:
        for n in range(count - traced):
            ids[f"e-{n:08d}"] = n.to_bytes(16, "big")
        tracemalloc.start()
        try:
            for n in range(count - traced, count):
                ids[f"e-{n:08d}"] = n.to_bytes(16, "big")
            retained, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert retained < 2**20 and peak < 3 * 2**20
        assert ids.filter_bytes < 4 * count
        assert len(ids) == count
        assert ids.get("e-00123456") == (123456).to_bytes(16, "big")
        assert ids.get("e-01000000") is None


# -- in the runtime ------------------------------------------------------------------------
def test_the_example_replays_the_same_with_the_index_spilled() -> None:
    """The runtime only needs get, set, update and clear: a drop-in for its dict."""
    data = EXAMPLE.read_bytes()
    plain, spilled = Replayer(), Replayer()
    with SpilledIds(batch=2, capacity=2, false_positive_rate=0.5) as ids:
        spilled.runtime.applied = ids
        for replayer in (plain, spilled):
            for number, raw in read_lines(io.BytesIO(data)):
                replayer.feed(number, raw)
        assert to_json(spilled.finish()) == to_json(plain.finish())
        assert ids == plain.runtime.applied
        assert spilled.duplicates > 0  # the example has a duplicate: found through the index
