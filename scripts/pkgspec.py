"""What goes into each OpenWrt package, read from the feed Makefiles under openwrt/.

Shared by build_ipk.py, build_apk.py and build_feed.py. A package is a
`Spec`: its feed Makefile and a function that lists its files. `pkgfiles.SPECS` lists
wg-endpointd, python3-icmplib, the LuCI app and the Prometheus collector
(scripts/pkgfiles.py); the last two are built only when their folders exist
in the tree.

Versions follow OpenWrt: PKG_VERSION-rPKG_RELEASE (opkg ranks -rN above -N,
and apk accepts only -rN). wg-endpointd's PKG_VERSION is not written in its
Makefile: the Makefile and this module both read __version__ from
src/wg_endpointd/__init__.py, the one place the version lives.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
FEED_NAME = "wgendpointd"  # the name used in feeds.conf (docs/install-openwrt.md)
VERSION_FILE = "src/wg_endpointd/__init__.py"
# The literal PKG_VERSION line of a Makefile that takes the version from VERSION_FILE.
VERSION_FROM_CODE = "$(shell sed -n 's/^__version__ = \"\\(.*\\)\"$$/\\1/p' $(WG_ENDPOINTD_TOP)/"


class BuildError(Exception):
    """The inputs are missing or inconsistent; the message says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One installed path: a file or a symlink; parent directories are implied.

    build_ipk.py also uses kind "dir" for the directory members of its tars.
    """

    path: str  # relative to /, no leading "./" or "/"
    mode: int
    data: bytes = b""
    kind: str = "file"  # "file", "symlink" (or "dir", see above)
    target: str = ""  # for symlinks


@dataclasses.dataclass(frozen=True, slots=True)
class Package:
    """One package, independent of the archive format."""

    name: str
    pkg_version: str
    pkg_release: str
    depends: tuple[str, ...]
    source: str  # feeds/<feed>/<category>/<folder>
    license: str
    license_files: str
    section: str
    url: str
    description: str  # possibly several lines
    conffiles: tuple[str, ...]
    entries: tuple[Entry, ...]
    postinst_pkg: str = ""  # Package/<name>/postinst: the package's own part
    prerm_pkg: str = ""
    arch: str = "all"

    @property
    def version(self) -> str:
        """Return PKG_VERSION-rPKG_RELEASE, as OpenWrt writes it for ipk and apk."""
        return f"{self.pkg_version}-r{self.pkg_release}"

    @property
    def ipk_filename(self) -> str:
        """Return <Package>_<Version>_<Arch>.ipk."""
        return f"{self.name}_{self.version}_{self.arch}.ipk"

    @property
    def apk_filename(self) -> str:
        """Return <name>-<version>.apk, package-pack.mk's name for apk."""
        return f"{self.name}-{self.version}.apk"


# -- Makefiles ----------------------------------------------------------------


def parse_makefile(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read `VAR:=value` assignments and `define NAME ... endef` blocks.

    Assignments inside a define are returned as "<define name>/<VAR>".
    This is not make; it reads only the literal parts the feed Makefiles keep.
    """
    variables: dict[str, str] = {}
    defines: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if current is not None:
            if line.strip() == "endef":
                defines[current] = "\n".join(body)
                current = None
                continue
            body.append(line)
            m = re.match(r"\s*([A-Z_]+)\s*:=\s*(.*?)\s*$", line)
            if m:
                variables[f"{current}/{m.group(1)}"] = m.group(2)
            continue
        m = re.match(r"define\s+(\S+)\s*$", line)
        if m:
            current, body = m.group(1), []
            continue
        m = re.match(r"([A-Z0-9_]+)\s*[:?]?=\s*(.*?)\s*$", line)
        if m:
            variables[m.group(1)] = m.group(2)
    return variables, defines


def literal(variables: dict[str, str], key: str, path: Path) -> str:
    """Return a variable that must be set to a value without make expansions."""
    value = variables.get(key, "")
    if not value or "$" in value:
        raise BuildError(f"{path}: {key} must be set to a literal value")
    return value


def make_unescape(text: str) -> str:
    """Return a define body as make hands it to the shell ($$ is one $)."""
    if re.search(r"\$[^$]", text.replace("$$", "")):
        raise BuildError(f"make expansion in a maintainer script: {text[:60]!r}")
    return text.replace("$$", "$")


def parse_depends(spec: str, path: Path) -> tuple[str, ...]:
    """Return libc plus every +dep of a DEPENDS line (@conditions are dropped)."""
    deps = ["libc"]  # PKG_DEFAULT_DEPENDS, added to every package by package-defaults.mk
    for word in spec.split():
        if word.startswith("@"):
            continue
        if not word.startswith("+") or ":" in word:
            raise BuildError(f"{path}: unsupported DEPENDS entry {word!r}")
        deps.append(word[1:])
    return tuple(deps)


def read_version(repo: Path) -> str:
    """Return __version__ from src/wg_endpointd/__init__.py."""
    init = repo / VERSION_FILE
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__version__"
                and isinstance(node.value, ast.Constant)):
            return str(node.value.value)
    raise BuildError(f"{init}: no __version__ = '...' assignment")


def pkg_version(repo: Path, variables: dict[str, str], path: Path) -> tuple[str, str]:
    """Return (PKG_VERSION, PKG_RELEASE), checked for what apk accepts."""
    raw = variables.get("PKG_VERSION", "")
    # A package without PKG_VERSION (luci.mk derives one) takes the project's.
    from_code = raw.startswith(VERSION_FROM_CODE) and raw.endswith(f"{VERSION_FILE})")
    version = read_version(repo) if not raw or from_code else raw
    release = variables.get("PKG_RELEASE", "1")
    if not re.fullmatch(r"\d+(\.\d+)*", version) or not re.fullmatch(r"[1-9]\d*", release):
        raise BuildError(f"{path}: PKG_VERSION must be N.N.N and PKG_RELEASE a positive "
                         f"integer (apk), not {version!r} and {release!r}")
    return version, release


def source_date_epoch(repo: Path) -> int:
    """Return the timestamp for every archive member: SOURCE_DATE_EPOCH, last commit, 0."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env:
        if not env.isdigit():
            raise BuildError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds")
        return int(env)
    git = shutil.which("git")
    if git is None:
        return 0
    try:
        out = subprocess.run([git, "-C", str(repo), "log", "-1", "--format=%ct"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    value = out.stdout.strip()
    return int(value) if out.returncode == 0 and value.isdigit() else 0


# -- specs ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What a file lister may need besides the repository."""

    repo: Path
    icmplib_src: Path | None
    cache: Path


Lister = Callable[[Context, dict[str, str], Path], list[Entry]]


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    """A package: its feed Makefile, its files and, for luci.mk apps, the defaults."""

    makefile: str
    files: Lister
    luci: bool = False  # luci.mk: LUCI_* variables, name from the folder
    optional: bool = False  # skipped when the Makefile is absent
    scripts_dir: str = ""  # postinst-pkg/prerm-pkg for the no-SDK build only


# luci.mk's postinst when a LuCI app defines none: drop the caches, reload rpcd.
LUCI_POSTINST = """\
[ -n "${IPKG_INSTROOT}" ] || {
\trm -f /tmp/luci-indexcache
\trm -rf /tmp/luci-modulecache/
\tkillall -HUP rpcd 2>/dev/null
\texit 0
}
"""


def _script(defines: dict[str, str], key: str, spec: Spec, ctx: Context, name: str) -> str:
    if key in defines:
        return make_unescape(defines[key].strip("\n")) + "\n"
    if spec.scripts_dir:
        path = ctx.repo / spec.scripts_dir / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


def read_package(spec: Spec, ctx: Context) -> Package:
    """Describe one package; raise BuildError when its Makefile lacks something."""
    path = ctx.repo / spec.makefile
    variables, defines = parse_makefile(path)
    version, release = pkg_version(ctx.repo, variables, path)
    if spec.luci:
        name = variables.get("PKG_NAME") or path.parent.name
        if variables.get("LUCI_PKGARCH") != "all":
            raise BuildError(f"{path}: LUCI_PKGARCH must be all")
        section, depends = "luci", parse_depends(variables.get("LUCI_DEPENDS", ""), path)
        title = literal(variables, "LUCI_TITLE", path)
        description = variables.get("LUCI_DESCRIPTION") or title
        conffiles: tuple[str, ...] = ()
    else:
        name = literal(variables, "PKG_NAME", path)
        pkg = f"Package/{name}"
        if variables.get(f"{pkg}/PKGARCH") != "all":
            raise BuildError(f"{path}: {pkg} must set PKGARCH:=all")
        section = literal(variables, f"{pkg}/SECTION", path)
        depends = parse_depends(variables.get(f"{pkg}/DEPENDS", ""), path)
        description = defines.get(f"{pkg}/description", "").strip("\n")
        conffiles = tuple(defines.get(f"{pkg}/conffiles", "").split())
    if not description.strip():
        raise BuildError(f"{path}: the package has no description")
    postinst = _script(defines, f"Package/{name}/postinst", spec, ctx, "postinst-pkg")
    if spec.luci and not postinst:
        postinst = LUCI_POSTINST
    entries = spec.files(ctx, variables, path)
    present = {f"/{e.path}" for e in entries}
    missing = [c for c in conffiles if c not in present]
    if missing:
        raise BuildError(f"{path}: conffiles not in the package: {missing}")
    category = path.parent.parent.name
    return Package(
        name=name, pkg_version=version, pkg_release=release, depends=depends,
        source=f"feeds/{FEED_NAME}/{category}/{path.parent.name}",
        license=literal(variables, "PKG_LICENSE", path),
        license_files=variables.get("PKG_LICENSE_FILES", ""), section=section,
        url=variables.get(f"Package/{name}/URL", ""), description=description,
        conffiles=conffiles, entries=tuple(entries), postinst_pkg=postinst,
        prerm_pkg=_script(defines, f"Package/{name}/prerm", spec, ctx, "prerm-pkg"),
    )


def with_dirs(paths: list[str]) -> list[str]:
    """Return every parent directory of `paths` (not "."), sorted."""
    dirs = {str(p) for path in paths for p in PurePosixPath(path).parents if str(p) != "."}
    return sorted(dirs)
