"""API tokens and their roles, from a tokens file that holds only the tokens' SHA-256.

``centre`` (the county's monitoring centre) sees and acknowledges everything;
``enterprise:<id>`` sees and acknowledges only that enterprise's registry entry and alarms.
A token is 256 random bits, so one unsalted SHA-256 is enough to keep the file useless to
whoever reads it, and lets a request's token be found with one lookup.

The file (YAML)::

    tokens:
      - {name: duty-room, role: centre, sha256: 9f86d0…}
      - {name: huaxin-safety-officer, role: "enterprise:huaxin-chem", sha256: 60303a…}

``earlywarn api-token add`` appends an entry and prints the token once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from earlywarn.schema import FileChecker
from earlywarn.yamlsource import Problem, YMap, load_file

CENTRE = "centre"
ENTERPRISE_PREFIX = "enterprise:"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TokensError(Exception):
    """The tokens file has problems; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the token's name and role."""

    name: str
    role: str

    @property
    def enterprise(self) -> str | None:
        """The enterprise an ``enterprise:<id>`` token is limited to (``None``: centre)."""
        return self.role.removeprefix(ENTERPRISE_PREFIX) if self.role != CENTRE else None

    def sees(self, enterprise: str) -> bool:
        """Whether this principal may see (and acknowledge) ``enterprise``'s data."""
        return self.role == CENTRE or self.enterprise == enterprise


def digest(token: str) -> str:
    """The hex SHA-256 a tokens file keeps for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def valid_role(role: str, enterprises: set[str] | None = None) -> str | None:
    """What is wrong with ``role`` (``None``: nothing); ``enterprises`` checks the id."""
    if role == CENTRE:
        return None
    if not role.startswith(ENTERPRISE_PREFIX) or not role.removeprefix(ENTERPRISE_PREFIX):
        return f"role {role!r} must be 'centre' or 'enterprise:<enterprise id>'"
    eid = role.removeprefix(ENTERPRISE_PREFIX)
    if enterprises is not None and eid not in enterprises:
        return f"role {role!r} names an enterprise that is not in the registry"
    return None


class Tokens:
    """Token digests → principals."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        self._by_digest = principals

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, token: str) -> Principal | None:
        """The principal of a presented token, ``None`` if unknown."""
        return self._by_digest.get(digest(token))

    @classmethod
    def load(cls, path: Path, enterprises: set[str] | None = None) -> Tokens:
        """Read and check a tokens file; :class:`TokensError` lists every problem."""
        problems: list[Problem] = []
        check = FileChecker(str(path), problems)
        data = load_file(path, problems)
        found: dict[str, Principal] = {}
        top = check.as_map(data, 1, "the tokens file") if not problems else None
        items = None
        if top is not None:
            check.known_keys(top, ("tokens",), "the tokens file")
            items = check.as_list(top.get("tokens"), top.line_of("tokens"), "'tokens'")
        names: set[str] = set()
        for item, line in zip(items or [], (items.item_lines if items else []), strict=True):
            tm = check.as_map(item, line, "a token")
            if tm is None:
                continue
            check.known_keys(tm, ("name", "role", "sha256"), "a token")
            name = check.text(tm, "name", "a token")
            role = check.text(tm, "role", f"token {name or '?'}")
            sha = check.text(tm, "sha256", f"token {name or '?'}")
            if role is not None and (wrong := valid_role(role, enterprises)) is not None:
                check.error(tm.line_of("role"), f"token {name}: {wrong}")
                role = None
            if sha is not None and not _SHA256.match(sha):
                check.error(
                    tm.line_of("sha256"),
                    f"token {name}: 'sha256' must be 64 lower-case hex digits (the token's "
                    "SHA-256, never the token itself)",
                )
                sha = None
            if name is not None and name in names:
                check.error(tm.line_of("name"), f"duplicate token name {name!r}")
            if name is None or role is None or sha is None:
                continue
            names.add(name)
            found[sha] = Principal(name, role)
        if problems:
            raise TokensError(problems)
        return cls(found)


def add_token(path: Path, name: str, role: str) -> str:
    """Append a token to the file (created if missing; its ``tokens`` list must be the last
    thing in it) and return the token, which is stored nowhere."""
    if (wrong := valid_role(role)) is not None:
        raise ValueError(wrong)
    existing = Tokens.load(path) if path.exists() else Tokens({})
    del existing  # loaded only to refuse appending to a broken file
    token = new_token()
    text = path.read_text(encoding="utf-8") if path.exists() else "tokens:\n"
    if not text.endswith("\n"):
        text += "\n"
    data = load_file(path, []) if path.exists() else None
    if isinstance(data, YMap) and data.get("tokens") == []:
        text = text.replace("tokens: []", "tokens:", 1)
    text += f'  - {{name: "{name}", role: "{role}", sha256: {digest(token)}}}\n'
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return token
