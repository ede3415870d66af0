"""Redis sets: ``Set``, a set of byte strings.

OBJECT ENCODING follows Redis 7.0: ``intset`` while every member has been a
64-bit integer in canonical form and the set has never held more than
``set-max-intset-entries`` members, ``hashtable`` from then on (listpack
sets came in Redis 7.2).
"""

from __future__ import annotations

from collections.abc import Callable

MEMBER_OVERHEAD = 33 + 40  # a bytes object's header and the set's slot
EMPTY_SIZE = 200


class Set(set):
    __slots__ = ("nbytes", "epoch", "peak_members", "all_integers")

    def __init__(self, members=()) -> None:
        super().__init__(members)
        self.nbytes = EMPTY_SIZE + sum(len(m) + MEMBER_OVERHEAD for m in self)
        self.epoch = 0
        self.peak_members = len(self)
        self.all_integers = all(is_int64(m) for m in self)

    def copy(self) -> Set:
        twin = Set(self)
        twin.peak_members, twin.all_integers = self.peak_members, self.all_integers
        return twin

    def encoding(self, settings) -> str:
        if self.all_integers and self.peak_members <= settings.set_max_intset_entries:
            return "intset"
        return "hashtable"

    def rewrite_records(self, key: bytes, per_command: int):
        members = list(self)
        for start in range(0, len(members), per_command):
            yield [b"SADD", key, *members[start : start + per_command]]

    # -- changes (write lock held) -------------------------------------------------

    def add_members(self, members: list[bytes]) -> tuple[int, Callable[[], None]]:
        """SADD: how many were new, and the undo."""
        added = [m for m in dict.fromkeys(members) if m not in self]
        self.update(added)
        self.nbytes += sum(len(m) + MEMBER_OVERHEAD for m in added)
        self.peak_members = max(self.peak_members, len(self))
        if self.all_integers and not all(is_int64(m) for m in added):
            self.all_integers = False
        return len(added), lambda: self._discard_all(added)

    def remove_members(self, members: list[bytes]) -> tuple[list[bytes], Callable[[], None]]:
        """SREM, SPOP, SMOVE: the members that were there, and the undo."""
        removed = [m for m in dict.fromkeys(members) if m in self]
        self.difference_update(removed)
        self.nbytes -= sum(len(m) + MEMBER_OVERHEAD for m in removed)

        def undo() -> None:
            self.update(removed)
            self.nbytes += sum(len(m) + MEMBER_OVERHEAD for m in removed)

        return removed, undo

    def _discard_all(self, members: list[bytes]) -> None:
        self.difference_update(members)
        self.nbytes -= sum(len(m) + MEMBER_OVERHEAD for m in members)


def is_int64(member: bytes) -> bool:
    """A member an intset could hold: a 64-bit integer in canonical form
    (Redis's string2ll: no sign but '-', no leading zeros, no spaces)."""
    if not member or len(member) > 20:
        return False
    try:
        number = int(member)
    except ValueError:
        return False
    return b"%d" % number == member and -(2**63) <= number < 2**63
