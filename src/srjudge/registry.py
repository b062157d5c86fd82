"""One way to register a component: a decorator in the component's own module, found lazily.

Every component kind (metrics, judges, SR backends, VLM backends, VLM protocols, readers) keeps a
:class:`Registry` of :class:`Entry` records. An entry carries the factory (so ``module:factory`` is
known), a one-line description, its option schema and its aliases; kinds add their own metadata by
subclassing :class:`Entry` (``MetricEntry.info``, ``JudgeEntry.needs_lr``...). A registry names the
packages that hold its components; they are imported the first time the registry is asked anything,
so ``import srjudge`` stays light, and adding a component means writing one module with one
decorated factory in that package. A module that fails to import is an error, never skipped.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from srjudge.errors import SrjudgeError, UnknownNameError

OptionSchema = Mapping[str, tuple[Any, Any]]
"""Option name -> (type or :class:`~srjudge.spec.Choice`, default); ``REQUIRED`` marks no default."""


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
"""Default of an option that must be given."""


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.7) -> str:
    """`` Did you mean: a, b?`` for the close matches of ``word`` among ``choices``; empty when none."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=n, cutoff=cutoff)
    return f" Did you mean: {', '.join(close)}?" if close else ""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """A registered component: its name, factory, description, option schema and aliases."""

    name: str
    factory: Callable[..., Any] = field(repr=False)
    description: str = ""
    options: OptionSchema = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """``module:factory``: where the component is built."""
        module = getattr(self.factory, "__module__", "?")
        qualname = getattr(self.factory, "__qualname__", type(self.factory).__name__)
        return f"{module}:{qualname}"

    def option_types(self) -> dict[str, Any]:
        """Option name -> type (or Choice), the schema :func:`srjudge.spec.coerce_options` takes."""
        return {k: t for k, (t, _) in self.options.items()}

    def option_lines(self) -> list[str]:
        """One human line per option: ``name: type (default value)``."""
        lines = []
        for key, (typ, default) in self.options.items():
            type_name = getattr(typ, "__name__", str(typ))
            if type_name.startswith("value: use one of "):
                type_name = type_name.removeprefix("value: use one of ").replace(", ", "|")
            shown = (
                "required"
                if default is REQUIRED
                else f"default {'none' if default is None else repr(default)}"
            )
            lines.append(f"{key}: {type_name} ({shown})")
        return lines

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (``srjudge judges --json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "target": self.target,
            "aliases": list(self.aliases),
            "options": {
                k: {
                    "type": getattr(t, "__name__", str(t)).removeprefix("value: use one of "),
                    "default": None if d is REQUIRED else d,
                    "required": d is REQUIRED,
                }
                for k, (t, d) in self.options.items()
            },
        }


class Named(Protocol):
    """What a registry holds: anything with a ``name`` (an :class:`Entry`, a prompt, a pipeline)."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)
F = TypeVar("F")


class Registry(Generic[E]):
    """Names (and aliases) -> entries, loaded from ``packages`` on first use; did-you-mean if unknown."""

    def __init__(
        self, kind: str, *, packages: tuple[str, ...] = (), entry_type: Callable[..., E] | None = None
    ) -> None:
        self.kind = kind
        self.packages = packages
        self.entry_type = entry_type
        self._entries: dict[str, E] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = not packages

    # -- registration -------------------------------------------------------------------------
    def add(self, entry: E, *, aliases: tuple[str, ...] = ()) -> E:
        """Register ``entry`` under its name and aliases; a duplicate name is a programming error."""
        aliases = (*getattr(entry, "aliases", ()), *aliases)
        for key in (entry.name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._entries[entry.name] = entry
        for alias in aliases:
            self._aliases[alias] = entry.name
        return entry

    def register(
        self,
        name: str,
        description: str,
        *,
        options: OptionSchema | None = None,
        aliases: tuple[str, ...] = (),
        **fields: Any,
    ) -> Callable[[F], F]:
        """Decorator: register the decorated factory as ``entry_type(name=..., factory=..., ...)``."""
        if self.entry_type is None:
            raise TypeError(f"the {self.kind} registry has no entry type; use add()")
        entry_type = self.entry_type

        def decorate(factory: F) -> F:
            self.add(
                entry_type(
                    name=name,
                    factory=factory,
                    description=description,
                    options=dict(options or {}),
                    aliases=aliases,
                    **fields,
                )
            )
            return factory

        return decorate

    # -- lazy loading -------------------------------------------------------------------------
    def load(self) -> None:
        """Import every module of the registry's packages (once); each registers its components."""
        if self._loaded:
            return
        self._loaded = True  # lookups made while modules import see what is registered so far
        for package in self.packages:
            for module in _modules_of(package):
                try:
                    importlib.import_module(module)
                except ImportError as exc:
                    self._loaded = False
                    missing = getattr(exc, "name", None) or ""
                    hint = (
                        f" Install the optional dependency {missing!r} (see the README's install section)."
                        if missing and not missing.startswith("srjudge")
                        else ""
                    )
                    raise SrjudgeError(
                        f"The {self.kind} module {module} could not be imported: {exc}.{hint}"
                    ) from exc

    # -- lookup -------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        self.load()
        key = name.strip().lower()
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        raise UnknownNameError(self.unknown_message(name))

    def get(self, name: str) -> E:
        return self._entries[self.canonical(name)]

    def unknown_message(self, name: str, *, also: Iterable[str] = ()) -> str:
        self.load()
        known = sorted({*self._entries, *also})
        hint = did_you_mean(name, [*known, *self._aliases])
        if hint:
            close = hint.removeprefix(" Did you mean: ").removesuffix("?").split(", ")
            hint = f" Did you mean: {', '.join(dict.fromkeys(self._aliases.get(c, c) for c in close))}?"
        if "=" in name:
            hint += (
                f" {name!r} looks like a key=value option, not a {self.kind} name: options go after the "
                "name (NAME:key=value,...); separate specs with ';' when a spec contains commas."
            )
        return f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(known)}."

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def entries(self) -> list[E]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return isinstance(name, str) and (name.lower() in self._entries or name.lower() in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._entries)


def _modules_of(package: str) -> list[str]:
    """The modules and subpackages of ``package`` (imported first), in name order."""
    pkg = importlib.import_module(package)
    paths = getattr(pkg, "__path__", None)
    if paths is None:
        return [package]
    return [package] + [
        f"{package}.{info.name}" for info in sorted(pkgutil.iter_modules(paths), key=lambda i: i.name)
    ]
