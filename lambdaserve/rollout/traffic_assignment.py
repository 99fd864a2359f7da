"""Which function version answers a request: Lambda's weighted alias, plus sticky assignment.

Lambda routes each invocation of a weighted alias at random: the additional version with
probability ``w``, the primary version otherwise. ``choose_version`` does the same when a request
carries no unit id. With a unit id (a user, a session, ...) the choice is *sticky*: the unit gets a
stable bucket in [0, 1) from a salted SHA-256 of its id (never Python's ``hash()``, which is
salted per process), and goes to the additional version iff ``bucket < w``. So:

- the same unit always lands on the same version while the routing is unchanged, in every process;
- raising ``w`` only moves units from the primary (champion) to the additional (challenger)
  version, never back: a unit on the challenger at ``w1`` is on it at every ``w2 > w1``;
- the salt defaults to the experiment (alias, primary and additional version), so a new
  challenger reassigns units independently of the previous experiment.
"""

from __future__ import annotations

import random
from hashlib import sha256

from lambdaserve.kernel.function_versions import AliasRouting

_SCALE = float(2**64)
# Traffic splitting is not security: a fast, non-cryptographic generator is what Lambda uses too.
_DEFAULT_RNG = random.Random()  # noqa: S311


def unit_bucket(unit_id: str, salt: str) -> float:
    """A unit's stable position in [0, 1): the first 8 bytes of SHA-256(``salt:unit_id``)."""
    digest = sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def experiment_id(routing: AliasRouting) -> str:
    """The default salt: one id per (alias, primary version, additional version)."""
    return ":".join([routing.alias, routing.version, *sorted(routing.additional)])


def choose_version(
    routing: AliasRouting,
    *,
    unit_id: str | None = None,
    salt: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """The function version that serves one request under ``routing``.

    >>> routing = AliasRouting(alias="live", version="1", additional={"2": 0.25})
    >>> choose_version(routing, unit_id="user-42") == choose_version(routing, unit_id="user-42")
    True
    """
    if not routing.additional:
        return routing.version
    if len(routing.additional) > 1:
        raise ValueError(f"alias {routing.alias}: at most one additional version takes traffic")
    routing.shares()  # validates the weight
    ((challenger, weight),) = routing.additional.items()
    if unit_id is None:
        draw = (rng or _DEFAULT_RNG).random()
    else:
        draw = unit_bucket(unit_id, experiment_id(routing) if salt is None else salt)
    return challenger if draw < weight else routing.version
