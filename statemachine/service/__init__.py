"""An HTTP face for the durable engine (FastAPI): see :mod:`statemachine.service.app`.

A package so that the service's parts (the app, and what the edge needs) live in small
modules of their own; this module re-exports what ``statemachine.service`` always did.
"""

from .app import PROBLEM_JSON, Problem, create_app

__all__ = ["PROBLEM_JSON", "Problem", "create_app"]
