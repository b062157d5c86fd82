"""A small generic registry with did-you-mean errors, shared by metrics, judges, degradations and backends."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from srjudge.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names (and aliases) to entries; unknown names get a did-you-mean message."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T, *, aliases: tuple[str, ...] = ()) -> T:
        """Register ``entry`` under ``name``; a duplicate name is a programming error."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(entry: T) -> T:
            return self.add(name, entry, aliases=aliases)

        return decorate

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        key = name.strip().lower()
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        raise UnknownNameError(self.unknown_message(name))

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(name.lower(), [*known, *self._aliases], n=5, cutoff=0.7)
        suggestions = list(dict.fromkeys(self._aliases.get(c, c) for c in close))[:3]
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        if "=" in name:
            hint += (
                f" {name!r} looks like a key=value option, not a {self.kind} name: options go after the "
                "name (NAME:key=value,...); separate specs with ';' when a spec contains commas."
            )
        return f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(known)}."

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name.lower() in self._entries or name.lower() in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
