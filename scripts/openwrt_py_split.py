#!/usr/bin/env python3
"""Which OpenWrt python3 packages provide the stdlib modules some code imports.

OpenWrt splits the standard library into python3-base, python3-light and a
set of python3-<name> packages (openwrt/packages lang/python/python3/Makefile
and files/python3-package-*.mk). Everything not split out, tkinter and idlelib
aside, is in python3-light, which depends on python3-base.

The module table here follows those .mk files; the imports are read with
`ast` and followed through the stdlib of the running interpreter. Usage:

    python3 scripts/openwrt_py_split.py DIR_OR_FILE...

prints each stdlib module reached and the package that provides it.
"""

from __future__ import annotations

import ast
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

LIGHT = "python3-light"
BASE = "python3-base"

# Top-level module -> split package (python3-package-*.mk; C extensions from
# lib-dynload included). 24.10 also has cgi, cgitb, distutils and lib2to3.
SPLIT: dict[str, str] = {
    "asyncio": "python3-asyncio",
    "logging": "python3-logging",
    "unicodedata": "python3-codecs",
    "_codecs_cn": "python3-codecs",
    "_codecs_hk": "python3-codecs",
    "_codecs_iso2022": "python3-codecs",
    "_codecs_jp": "python3-codecs",
    "_codecs_kr": "python3-codecs",
    "_codecs_tw": "python3-codecs",
    "ctypes": "python3-ctypes",
    "_ctypes": "python3-ctypes",
    "dbm": "python3-dbm",
    "_dbm": "python3-dbm",
    "_gdbm": "python3-dbm",
    "decimal": "python3-decimal",
    "_decimal": "python3-decimal",
    "email": "python3-email",
    "lzma": "python3-lzma",
    "_lzma": "python3-lzma",
    "multiprocessing": "python3-multiprocessing",
    "_multiprocessing": "python3-multiprocessing",
    "curses": "python3-ncurses",
    "_curses": "python3-ncurses",
    "_curses_panel": "python3-ncurses",
    "ssl": "python3-openssl",  # ssl.py is in light, but useless without _ssl
    "_ssl": "python3-openssl",
    "_hashlib": "python3-openssl",
    "pydoc": "python3-pydoc",
    "doctest": "python3-pydoc",
    "pydoc_data": "python3-pydoc",
    "readline": "python3-readline",
    "sqlite3": "python3-sqlite3",
    "_sqlite3": "python3-sqlite3",
    "unittest": "python3-unittest",
    "urllib": "python3-urllib",
    "uuid": "python3-uuid",
    "_uuid": "python3-uuid",
    "venv": "python3-venv",
    "ensurepip": "python3-venv",
    "xml": "python3-xml",
    "xmlrpc": "python3-xml",
    "_elementtree": "python3-xml",
    "pyexpat": "python3-xml",
    "webbrowser": "python3-webbrowser",
    "cgi": "python3-cgi",
    "cgitb": "python3-cgitb",
    "distutils": "python3-distutils",
    "lib2to3": "python3-lib2to3",
}

# PYTHON3_BASE_LIB_FILES in lang/python/python3/Makefile.
BASE_MODULES = frozenset({
    "encodings", "_collections_abc", "_sitebuiltins", "_sysconfigdata", "_weakrefset",
    "abc", "codecs", "genericpath", "io", "os", "posixpath", "site", "sysconfig", "stat",
})

# Left out of every OpenWrt python3 package.
UNAVAILABLE = frozenset({"tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "test",
                         "_osx_support"})

# Gone from the stdlib by Python 3.14 (3.12: PEP 632 and others; 3.13: PEP 594, lib2to3).
REMOVED = frozenset({
    "asynchat", "asyncore", "distutils", "imp", "smtpd",
    "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
    "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
    "telnetlib", "uu", "xdrlib",
})

# What a package pulls in by its own DEPENDS (python3-package-*.mk).
PACKAGE_DEPENDS: dict[str, frozenset[str]] = {
    LIGHT: frozenset({BASE}),
    "python3-urllib": frozenset({LIGHT, "python3-email"}),
    "python3-cgi": frozenset({LIGHT, "python3-email"}),
    "python3-cgitb": frozenset({LIGHT, "python3-cgi", "python3-pydoc"}),
    "python3-distutils": frozenset({LIGHT, "python3-email"}),
}

STDLIB_NAMES = frozenset(sys.stdlib_module_names) | REMOVED


def top(module: str) -> str:
    """Return the top-level package of a dotted module name."""
    return module.partition(".")[0]


def is_stdlib(module: str) -> bool:
    """Tell whether a module belongs to the standard library."""
    return top(module) in STDLIB_NAMES


def provider(module: str) -> str:
    """Return the OpenWrt package providing a stdlib module.

    Raises ValueError for modules no OpenWrt python3 package provides.
    """
    name = top(module)
    if name in UNAVAILABLE:
        raise ValueError(f"{module}: not in any OpenWrt python3 package")
    if name in SPLIT:
        return SPLIT[name]
    if name in BASE_MODULES or name in sys.builtin_module_names:
        return BASE
    return LIGHT


def expand(packages: Iterable[str]) -> set[str]:
    """Return packages plus everything their DEPENDS pull in, transitively."""
    todo = list(packages)
    done: set[str] = set()
    while todo:
        pkg = todo.pop()
        if pkg in done:
            continue
        done.add(pkg)
        todo.extend(PACKAGE_DEPENDS.get(pkg, {LIGHT} if pkg.startswith("python3-") else ()))
    return done


_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))


def _guards_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for n in names:
            if isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                    "Exception", "BaseException"):
                return True
    return False


def _never_at_import(test: ast.expr) -> bool:
    """Tell whether an `if` test is `TYPE_CHECKING` or `__name__ == "__main__"`."""
    if isinstance(test, ast.Name | ast.Attribute):
        return getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING"
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
    return ".".join(base + ([node.module] if node.module else []))


def imports(source: str, package: str = "", *, lazy: bool = True) -> set[str]:
    """Return the absolute module names a module's source imports.

    `package` is the package the module belongs to (for relative imports).
    Imports under `if TYPE_CHECKING`, under `if __name__ == "__main__"` and
    in `try` blocks that catch ImportError are left out. With lazy=False, imports inside
    functions and classes are left out as well. For `from a import b` both
    `a` and `a.b` are returned; callers drop names that are not modules.
    """
    found: set[str] = set()

    def visit(body: Iterable[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.module == "__future__":
                    continue
                base = _absolute(node, package)
                if base:
                    found.add(base)
                found.update(f"{base}.{a.name}".lstrip(".") for a in node.names if a.name != "*")
            elif isinstance(node, ast.If):
                if not _never_at_import(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, _TRY):
                if not _guards_import_error(node):
                    visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
                visit(node.body)
            elif lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                            ast.ClassDef)):
                visit(node.body)

    visit(ast.parse(source).body)
    return found


def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def locate(module: str, stdlib: Path | None = None) -> tuple[Path | None, bool]:
    """Find a stdlib module's source file without importing anything.

    Returns (path or None, is_package). None means a built-in module, a C
    extension, or a module this interpreter does not have.
    """
    base = (stdlib or _stdlib_dir()).joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), False
    return None, False


def exists(module: str, stdlib: Path | None = None) -> bool:
    """Tell whether this interpreter has a stdlib module (source, C extension or built-in)."""
    if module in sys.builtin_module_names or locate(module, stdlib)[0] is not None:
        return True
    dynload = (stdlib or _stdlib_dir()) / "lib-dynload"
    return "." not in module and dynload.is_dir() and any(dynload.glob(f"{module}.*so"))


def stdlib_closure(modules: Iterable[str], stdlib: Path | None = None) -> set[str]:
    """Return the stdlib modules that importing `modules` loads for sure.

    Follows imports at module level (not in functions, not optional ones)
    through this interpreter's stdlib sources. Modules the interpreter does
    not have (other platforms, other versions) are dropped.
    """
    todo = [m for m in modules if is_stdlib(m)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or not exists(name, stdlib):
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path, is_pkg = locate(name, stdlib)
        if path is None:
            continue
        package = name if is_pkg else ".".join(parts[:-1])
        source = path.read_text(encoding="utf-8", errors="replace")
        todo.extend(m for m in imports(source, package, lazy=False) if is_stdlib(m))
    return seen


def code_imports(root: Path, package_dirs: Iterable[Path]) -> set[str]:
    """Return every module imported by the .py files of the given package directories.

    `root` is the directory that contains the packages (their sys.path entry).
    Imports inside functions count: lazy imports run too.
    """
    found: set[str] = set()
    for pkg_dir in package_dirs:
        for path in sorted(pkg_dir.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            package = ".".join(parts[:-1])  # a module's package; __init__ is its own
            found |= imports(path.read_text(encoding="utf-8"), package)
    return found


def required_packages(stdlib_modules: Iterable[str]) -> dict[str, set[str]]:
    """Map each OpenWrt package to the stdlib modules it is needed for."""
    need: dict[str, set[str]] = {}
    for module in stdlib_modules:
        need.setdefault(provider(module), set()).add(module)
    return need


def main(argv: list[str]) -> int:
    """Print the stdlib modules and OpenWrt packages the given code needs."""
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: openwrt_py_split.py DIR_OR_FILE...", file=sys.stderr)
        return 2
    direct: set[str] = set()
    for arg in argv:
        path = Path(arg)
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            direct |= {m for m in imports(f.read_text(encoding="utf-8")) if is_stdlib(m)}
    closure = stdlib_closure(direct)
    for pkg, mods in sorted(required_packages(closure).items()):
        print(f"{pkg}: {' '.join(sorted(m for m in mods if '.' not in m or m in direct))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

