"""The Kconfig symbols a patch touches, and what a symbol's definition says.

A patch touches a symbol when it adds or changes a line of the symbol's
``config``/``menuconfig`` entry in a Kconfig file, or when it changes a
C or assembler file whose object the symbol builds: the object's
directory Makefile (or Kbuild) says ``obj-$(CONFIG_X) += x.o``, or
``x.o`` is part of a composite object (``foo-y := x.o``,
``foo-$(CONFIG_Y) += x.o``) that such a line builds.  Only the
Makefile of the object's own directory is read: the symbols of the
parent directories (``obj-$(CONFIG_VHOST) += vhost/``) are the
subsystem's, not the patch's.  A symbol counts only when some Kconfig
file of the tree defines it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..git import git
from .context import CheckContext

_ENTRY = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
# Lines that end the entry before them (outside help text).
_ENDS = re.compile(r"^\s*(?:(?:menu)?config|choice|endchoice|comment|menu|endmenu|if|endif|"
                   r"source|rsource|osource|orsource|mainmenu)\b")
_HELP = re.compile(r"^\s*(?:---)?help(?:---)?\s*$")
_TYPE = re.compile(r"^\s*(?:def_)?(bool|tristate|int|hex|string)\b")
_DEPENDS = re.compile(r"^\s*depends\s+on\s+(.+?)\s*$")
_IF = re.compile(r"^\s*if\s+(.+?)\s*$")
_ENDIF = re.compile(r"^\s*endif\b")
_SYMBOL = re.compile(r"\b[A-Z][A-Z0-9_]*\b")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)
_ASSIGN = re.compile(r"^([A-Za-z0-9_.-]+?)-(y|m|objs|\$\(CONFIG_([A-Za-z0-9_]+)\))\s*[:+]?=(.*)$")


@dataclass(frozen=True)
class Definition:
    name: str
    file: str  # relative to the tree
    line: int
    type: str  # bool, tristate, int, hex, string ("" when the entry gives none)
    depends: tuple[str, ...]  # its `depends on` and the `if` blocks around it

    def depends_symbols(self) -> list[str]:
        seen: list[str] = []
        for expr in self.depends:
            for sym in _SYMBOL.findall(expr):
                if sym not in seen:
                    seen.append(sym)
        return seen


@dataclass
class _Entry:
    name: str
    first: int  # 1-based line numbers of the entry, inclusive
    last: int = 0
    type: str = ""
    depends: list[str] = field(default_factory=list)


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def entries(text: str) -> list[_Entry]:
    """The config/menuconfig entries of a Kconfig file, with their line ranges
    (``depends`` holds the `if` blocks around the entry first)."""
    found: list[_Entry] = []
    ifs: list[str] = []
    current: _Entry | None = None
    help_indent: int | None = None
    in_help = False
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if in_help:
            if not line.strip():
                continue
            if help_indent is None:
                help_indent = _indent(line)
                continue
            if _indent(line) >= help_indent:
                continue
            in_help = False
        if _ENDS.match(line):
            if current is not None:
                found.append(_closed(current, lines, number - 1))
                current = None
            if m := _ENTRY.match(line):
                current = _Entry(m.group(1), number, depends=list(ifs))
            elif m := _IF.match(line):
                ifs.append(m.group(1))
            elif _ENDIF.match(line) and ifs:
                ifs.pop()
            continue
        if current is None:
            continue
        if _HELP.match(line):
            in_help, help_indent = True, None
        elif (m := _TYPE.match(line)) and not current.type:
            current.type = m.group(1)
        elif m := _DEPENDS.match(line):
            current.depends.append(m.group(1))
    if current is not None:
        found.append(_closed(current, lines, len(lines)))
    return found


def _closed(entry: _Entry, lines: list[str], last: int) -> _Entry:
    """The entry, ending at ``last`` less the blank lines before the next one."""
    while last > entry.first and not lines[last - 1].strip():
        last -= 1
    entry.last = last
    return entry


def _changed_lines(ctx: CheckContext, path: str) -> set[int]:
    """Lines of ``path`` (as the patch leaves it) that the patch adds or changes.

    A hunk that only deletes marks the line before the deletion.
    """
    out = git(ctx.tree, "diff", "-U0", "--no-renames", ctx.prev_commit, ctx.commit, "--",
              path).stdout
    lines: set[int] = set()
    for m in _HUNK.finditer(out):
        start, count = int(m.group(1)), int(m.group(2) or "1")
        lines.update(range(start, start + count) if count else [max(start, 1)])
    return lines


def in_kconfig(ctx: CheckContext) -> list[str]:
    """Symbols whose Kconfig entry the patch adds or changes."""
    names: list[str] = []
    for status, path in ctx.changed_files():
        if status == "D" or not Path(path).name.startswith("Kconfig"):
            continue
        try:
            text = (ctx.tree / path).read_text(errors="replace")
        except OSError:
            continue
        changed = _changed_lines(ctx, path)
        for entry in entries(text):
            hit = any(entry.first <= n <= entry.last for n in changed)
            if hit and entry.name not in names:
                names.append(entry.name)
    return names


def _logical_lines(text: str) -> list[str]:
    """A Makefile's lines, continuations joined and comments dropped."""
    return [line.split("#", 1)[0].strip()
            for line in text.replace("\\\n", " ").splitlines()]


def makefile_symbols(makefile_text: str, obj: str) -> list[str]:
    """The CONFIG_ symbols (without the prefix) that build ``obj`` (a name in
    the Makefile's directory, such as ``blk.o``)."""
    direct: dict[str, list[str]] = {}  # object -> symbols of obj-$(CONFIG_X) lines
    parents: dict[str, list[tuple[str, str]]] = {}  # object -> (composite, symbol or "")
    for line in _logical_lines(makefile_text):
        m = _ASSIGN.match(line)
        if not m:
            continue
        lhs, _kind, sym, rhs = m.groups()
        for item in rhs.split():
            if not item.endswith(".o"):
                continue
            if lhs in ("obj", "lib"):
                if sym:
                    direct.setdefault(item, []).append(sym)
            else:
                parents.setdefault(item, []).append((lhs + ".o", sym or ""))
    found: list[str] = []
    todo, seen = [obj], set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for sym in direct.get(name, []):
            if sym not in found:
                found.append(sym)
        for parent, sym in parents.get(name, []):
            if sym and sym not in found:
                found.append(sym)
            todo.append(parent)
    return found


def of_objects(ctx: CheckContext) -> list[str]:
    """Symbols that build the objects of the C and assembler files the patch changes."""
    names: list[str] = []
    for status, path in ctx.changed_files():
        if status == "D" or not path.endswith((".c", ".S")):
            continue
        directory = Path(path).parent
        for kbuild_file in ("Kbuild", "Makefile"):
            makefile = ctx.tree / directory / kbuild_file
            if makefile.is_file():
                text = makefile.read_text(errors="replace")
                for sym in makefile_symbols(text, Path(path).stem + ".o"):
                    if sym not in names:
                        names.append(sym)
                break
    return names


def definition(tree: Path, name: str) -> Definition | None:
    """The first Kconfig entry of the tree (as checked out) that defines ``name``."""
    proc = git(tree, "grep", "-n", "-E", rf"^\s*(menu)?config\s+{name}\s*$", "--",
               "*Kconfig*", check=False)
    for hit in proc.stdout.splitlines():
        path, _, rest = hit.partition(":")
        try:
            text = (tree / path).read_text(errors="replace")
        except OSError:
            continue
        line = int(rest.partition(":")[0])
        for entry in entries(text):
            if entry.name == name and entry.first == line:
                return Definition(name, path, line, entry.type, tuple(entry.depends))
    return None


def touched(ctx: CheckContext) -> list[Definition]:
    """The defined symbols the patch touches (its Kconfig entries first, then
    those that build its objects)."""
    found: list[Definition] = []
    for name in [*in_kconfig(ctx), *of_objects(ctx)]:
        if any(d.name == name for d in found):
            continue
        d = definition(ctx.tree, name)
        if d is not None:
            found.append(d)
    return found
