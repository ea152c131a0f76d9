"""A curated mutation run over the money and time rules (``make mutants``).

Each mutant in ``scripts/mutants.toml`` replaces one exact snippet of one file (the
snippet must occur exactly once there) in a temporary copy of the tree and runs the
fast tests against it (``pytest -x``). A mutant the tests fail on is *killed*; one
they pass is a *survivor*: a rule no test pins, unless the list marks it
``equivalent`` with the reason it cannot change behaviour.

Why our own list and not a tool: ``mutmut`` 3 only mutates inside functions, so the
refund table, the 14-day delay, ``MAX_INTEGER_DIGITS`` and every guard lambda of the
lifecycle declarations (module-level data) are out of its reach; ``cosmic-ray``
reaches them but writes ~1,200 mechanical mutants for these files (two thirds in the
whole of ``runtime.py``), one full pytest run each, and cannot say "swap advertiser and
provider" or "price by the stage now, not at request". Measured figures: README,
"Mutation testing".

A mutant first runs against the tests listed for its file in ``[focus]`` (most are
killed there, in a fraction of the time), and only a survivor of those against the
whole fast list (``tests``): a survivor has survived every fast test.

Reproducible: the same list, the same tests, ``--hypothesis-seed=0``, no hypothesis
database carried from one mutant to the next, ``PYTHONHASHSEED=0``. Not part of CI.

    python scripts/mutants.py            # run every mutant (jobs: one per CPU)
    python scripts/mutants.py --check    # only check that every snippet is found once
    python scripts/mutants.py --diff ID  # show what a mutant changes
    python scripts/mutants.py ID ...     # run some mutants only

Exit status: 0 when every mutant not marked equivalent is killed and every equivalent
one survives; 1 otherwise; 2 when the list is broken (a snippet missing or not unique)
or the tests fail on the unmutated tree.
"""

from __future__ import annotations

import argparse
import difflib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "scripts" / "mutants.toml"
#: What the work copies leave out: environments, caches, VCS data.
IGNORE = shutil.ignore_patterns(".git", ".venv", ".venv-*", "__pycache__", ".hypothesis", ".mypy_cache",
                                ".pytest_cache", ".ruff_cache", "mutants", "*.egg-info", "*.db")
#: A mutant that makes the tests loop is killed by a timeout of this many baselines.
TIMEOUT_FACTOR = 5


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    why: str
    tests: tuple[str, ...]  # all the fast tests: what a survivor survived
    focus: tuple[str, ...] = ()  # tried first: the tests likeliest to kill it
    equivalent: str | None = None

    def apply(self, text: str) -> str:
        return text.replace(self.original, self.replacement, 1)


@dataclass
class Result:
    mutant: Mutant
    line: int
    killed: bool
    seconds: float
    by: str = ""  # the first failing test, or "timeout", "collection"


@dataclass
class Problems:
    errors: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.errors.append(message)


def load(path: Path) -> list[Mutant]:
    """The mutants of ``path``; raises ``SystemExit`` naming every malformed entry."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    default = tuple(data.get("tests", ()))
    focus = {file: tuple(tests) for file, tests in data.get("focus", {}).items()}
    mutants, problems, seen = [], Problems(), set()
    for number, entry in enumerate(data.get("mutant", ()), start=1):
        ident = entry.get("id", f"#{number}")
        missing = [k for k in ("id", "file", "original", "replacement", "why") if k not in entry]
        unknown = set(entry) - {"id", "file", "original", "replacement", "why", "tests", "equivalent"}
        if missing or unknown:
            problems.add(f"{path.name}: mutant {ident}: missing {missing or '-'}, "
                         f"unknown {sorted(unknown) or '-'}")
            continue
        if ident in seen:
            problems.add(f"{path.name}: mutant {ident}: the id is used twice")
        seen.add(ident)
        if entry["original"] == entry["replacement"]:
            problems.add(f"{path.name}: mutant {ident}: the replacement is the original")
        if not default:
            problems.add(f"{path.name}: no `tests` list: nothing to run the mutants against")
            break
        first = tuple(entry.get("tests", focus.get(entry["file"], ())))
        mutants.append(Mutant(ident, entry["file"], entry["original"], entry["replacement"], entry["why"],
                              default, first if first != default else (), entry.get("equivalent")))
    if problems.errors:
        raise SystemExit("\n".join(problems.errors))
    return mutants


def locate(mutants: Iterable[Mutant], root: Path = ROOT) -> dict[str, int]:
    """The line of each mutant's snippet; raises ``SystemExit`` naming every mutant whose
    file is missing or whose snippet is missing or not unique (the list needs refreshing)."""
    lines, problems = {}, Problems()
    for mutant in mutants:
        path = root / mutant.file
        if not path.is_file():
            problems.add(f"mutant {mutant.id}: no file {mutant.file}")
            continue
        text = path.read_text(encoding="utf-8")
        count = text.count(mutant.original)
        if count != 1:
            where = "not found" if count == 0 else f"found {count} times (make it unique)"
            problems.add(f"mutant {mutant.id}: snippet {mutant.original.splitlines()[0].strip()!r}… "
                         f"{where} in {mutant.file}")
            continue
        lines[mutant.id] = text[: text.index(mutant.original)].count("\n") + 1
        for test in (*mutant.focus, *mutant.tests):
            if not (root / test.split("::")[0]).exists():
                problems.add(f"mutant {mutant.id}: no test file {test}")
    if problems.errors:
        raise SystemExit("the mutant list needs refreshing:\n  " + "\n  ".join(problems.errors))
    return lines


def vet(mutants: Iterable[Mutant], root: Path = ROOT) -> None:
    """Raise ``SystemExit`` for a mutant that would die of its own typo, not of a test:
    a mutated file that does not compile, or uses a name it does not define (ruff F821,
    when ruff is installed); a mutated TOML file that is not TOML, or (a policy version)
    that the policy reader refuses. Such a "kill" would prove nothing."""
    problems = Problems()
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    for mutant in mutants:
        text = mutant.apply((root / mutant.file).read_text(encoding="utf-8"))
        if mutant.file.endswith(".toml"):
            problem = _toml_problem(mutant.file, text, root)
            if problem:
                problems.add(f"mutant {mutant.id}: the mutated file {problem}")
            continue
        try:
            compile(text, mutant.file, "exec")
        except SyntaxError as exc:
            problems.add(f"mutant {mutant.id}: the mutated file does not compile: {exc.msg} "
                         f"(line {exc.lineno})")
            continue
        if ruff:
            found = subprocess.run([ruff, "check", "--quiet", "--no-cache", "--select", "F821",
                                    "--output-format", "concise", "--stdin-filename", mutant.file, "-"],
                                   input=text, capture_output=True, text=True, check=False)
            if found.returncode not in (0, 1):
                raise SystemExit(f"ruff failed: {found.stderr.strip()}")
            if found.stdout.strip():
                problems.add(f"mutant {mutant.id}: {found.stdout.strip()}")
    if problems.errors:
        raise SystemExit("mutants that would fail by themselves:\n  " + "\n  ".join(problems.errors))


def _toml_problem(file: str, text: str, root: Path) -> str | None:
    """Why a mutated TOML file could not even be read (``None``: it can). A policy
    version (``statemachine/lifecycles/policies/``) must also pass the policy reader:
    the package reads the built-in one on import, so a refused file fails every test."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return f"is not TOML: {exc}"
    if Path(file).parent.as_posix() == "statemachine/lifecycles/policies":
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        from statemachine.lifecycles.versions import PolicyError, parse_version

        try:
            parse_version(data, file)
        except PolicyError as exc:
            return f"is refused by the policy reader: {exc}"
    return None


def environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    return env


def run_tests(copy: Path, tests: Sequence[str], timeout: float | None) -> tuple[int | None, str, float]:
    """pytest on the work copy: (exit status or None on timeout, output, seconds)."""
    shutil.rmtree(copy / ".hypothesis", ignore_errors=True)  # no example carried over
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--hypothesis-seed=0", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def killer(status: int | None, output: str) -> str:
    if status is None:
        return "timeout"
    found = _FAILED.search(output)
    if found:
        return found.group(1)
    return "collection/import error" if status in (2, 4) else f"pytest exit {status}"


def make_copy(into: Path) -> Path:
    copy = into / "tree"
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    return copy


def check_import(copy: Path) -> None:
    """The work copy's package is the one imported (not the editable install's)."""
    found = subprocess.run([sys.executable, "-c", "import statemachine; print(statemachine.__file__)"],
                           cwd=copy, env=environment(copy), capture_output=True, text=True, check=True)
    if not Path(found.stdout.strip()).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the tests would import {found.stdout.strip()}, not the work copy {copy}")


def run(mutants: Sequence[Mutant], lines: dict[str, int], jobs: int) -> tuple[list[Result], float]:
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copies: queue.Queue[Path] = queue.Queue()
        for n in range(jobs):
            (Path(tmp) / str(n)).mkdir()
            copies.put(make_copy(Path(tmp) / str(n)))
        first = copies.get()
        check_import(first)
        default = mutants[0].tests
        status, output, baseline = run_tests(first, default, None)
        if status != 0:
            raise SystemExit(f"the tests fail on the unmutated tree (exit {status}):\n{output[-3000:]}")
        copies.put(first)
        print(f"baseline: {len(default)} test files pass in {baseline:.1f} s; "
              f"{len(mutants)} mutants on {jobs} job(s)", flush=True)
        timeout = max(60.0, TIMEOUT_FACTOR * baseline)

        def one(mutant: Mutant) -> Result:
            copy = copies.get()
            target = copy / mutant.file
            original = target.read_text(encoding="utf-8")
            try:
                target.write_text(mutant.apply(original), encoding="utf-8")
                seconds = 0.0
                for tests in (mutant.focus, mutant.tests) if mutant.focus else (mutant.tests,):
                    status, output, took = run_tests(copy, tests, timeout)
                    seconds += took
                    if status != 0:
                        break
            finally:
                target.write_text(original, encoding="utf-8")
                copies.put(copy)
            killed = status != 0
            if status == 5:
                raise SystemExit(f"mutant {mutant.id}: pytest collected no tests")
            by = killer(status, output) if killed else ""
            result = Result(mutant, lines[mutant.id], killed, seconds, by)
            mark = f"killed   {mutant.id} ({seconds:.1f} s) by {result.by}" if killed else \
                f"SURVIVED {mutant.id} ({seconds:.1f} s)"
            print(f"  {mark}", flush=True)
            return result

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, mutants))
        return results, time.perf_counter() - start


def report(results: Sequence[Result], seconds: float, jobs: int) -> int:
    killed = [r for r in results if r.killed and not r.mutant.equivalent]
    survived = [r for r in results if not r.killed and not r.mutant.equivalent]
    equivalent = [r for r in results if r.mutant.equivalent and not r.killed]
    misjudged = [r for r in results if r.mutant.equivalent and r.killed]
    print()
    print(f"{len(results)} mutants: {len(killed) + len(misjudged)} killed, "
          f"{len(survived) + len(equivalent)} survived ({len(equivalent)} of them equivalent); "
          f"{seconds / 60:.1f} min on {jobs} job(s)")
    if survived:
        print("\nSURVIVORS (a rule no test pins):")
        for r in survived:
            print(f"  {r.mutant.file}:{r.line}  {r.mutant.id}: {r.mutant.why}")
    if equivalent:
        print("\nequivalent (cannot change behaviour):")
        for r in equivalent:
            print(f"  {r.mutant.file}:{r.line}  {r.mutant.id}: {r.mutant.equivalent}")
    if misjudged:
        print("\nKILLED BUT LISTED AS EQUIVALENT "
              "(a test pins what should not matter, or the reason is wrong):")
        for r in misjudged:
            print(f"  {r.mutant.file}:{r.line}  {r.mutant.id}: killed by {r.by}")
    return 1 if survived or misjudged else 0


def show(mutant: Mutant, line: int) -> None:
    before = mutant.original.splitlines(keepends=True)
    after = mutant.replacement.splitlines(keepends=True)
    print(f"{mutant.id} ({mutant.file}:{line}): {mutant.why}")
    if mutant.equivalent:
        print(f"  equivalent: {mutant.equivalent}")
    sys.stdout.writelines(difflib.unified_diff(before, after, mutant.file, mutant.file, lineterm="\n"))
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="run only these mutants")
    parser.add_argument("--list", type=Path, default=LIST, help="the mutant list (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only check the snippets, run nothing")
    parser.add_argument("--diff", action="store_true", help="show the mutants' changes, run nothing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel test runs")
    args = parser.parse_args(argv)
    try:
        mutants = load(args.list)
        lines = locate(mutants)
        if not args.diff:
            vet(mutants)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.ids:
        unknown = set(args.ids) - {m.id for m in mutants}
        if unknown:
            print(f"no mutant {', '.join(sorted(unknown))} in {args.list}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.ids]
    if args.check:
        print(f"{len(mutants)} mutants, every snippet found exactly once "
              f"({sum(1 for m in mutants if m.equivalent)} listed as equivalent)")
        return 0
    if args.diff:
        for mutant in mutants:
            show(mutant, lines[mutant.id])
        return 0
    try:
        results, seconds = run(mutants, lines, max(1, args.jobs))
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    return report(results, seconds, max(1, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
