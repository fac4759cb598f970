"""The tokenizer of the UCI reader: a cursor that behaves like libuci's parse buffer
(openwrt/uci file.c: uci_getln, skip_whitespace, parse_str, next_arg). Pure."""

import re

from ..core.errors import ConfigError

SPACE = " \t\n\v\f\r"  # C isspace() in the C locale: never U+00A0 and the like
SKIP = re.compile(r"[ \t\n\v\f\r]*")
_WORD = re.compile(r"[ \t]*([^ \t]*)")  # strtok(" \t")
_PLAIN = re.compile(r"[^'\"#;\\ \t\n\v\f\r]+")
_DQ_RUN = re.compile(r'[^"\\]*')


class Reader:
    """A cursor over the text that sees one logical line at a time, as uci's buffer.

    `stop` is where the buffered line ends (a consumed `;` or `#` moves it back),
    `nxt` where the next physical line starts, `line` the physical lines read.
    """

    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self.pos = self.stop = self.nxt = self.line = 0

    def error(self, message: str, line: int | None = None) -> ConfigError:
        return ConfigError(message, self.path, self.line if line is None else line)

    def fill(self) -> bool:
        """Append the next physical line to the buffer (uci_getln); False at EOF."""
        if self.nxt >= len(self.text):
            return False
        newline = self.text.find("\n", self.nxt)
        self.stop = self.nxt = len(self.text) if newline < 0 else newline + 1
        self.line += 1
        return True

    def next_line(self) -> bool:
        self.pos = self.nxt
        return self.fill()

    def reach(self, pos: int) -> None:
        """Make the buffer hold `pos` (a quoted value that runs over lines)."""
        while pos >= self.stop and self.fill():
            pass

    def cur(self) -> str:
        return self.text[self.pos] if self.pos < self.stop else ""

    def skip_space(self) -> None:
        self.pos = SKIP.match(self.text, self.pos, self.stop).end()  # type: ignore[union-attr]

    def word(self) -> tuple[str, bool]:
        """The command word and whether a blank follows it (strtok)."""
        m = _WORD.match(self.text, self.pos, self.stop)
        assert m is not None
        self.pos = m.end()
        return m[1], self.pos < self.stop

    def arg(self) -> str:
        """The next argument ('' when none), as next_arg and parse_str."""
        self.skip_space()
        if self.cur() == ";":
            self.pos += 1
            return ""
        out: list[str] = []
        lagged = False  # a quote or backslash was consumed: `;` then survives
        while True:
            c = self.cur()
            if c in "'\"" and c:
                lagged = True
                out.append(self._quoted(c))
            elif c == "#":
                self.stop = self.pos
            elif c == ";":
                if not lagged:
                    self.stop = self.pos  # the terminator overwrote the `;`
                return "".join(out)
            elif c == "\\":
                lagged = True
                if self._backslash():
                    out.append(self.text[self.pos])
                    self.pos += 1
            elif c:
                m = _PLAIN.match(self.text, self.pos, self.stop)
                assert m is not None
                out.append(m[0])
                self.pos = m.end()
            c = self.cur()
            if not c or c in SPACE:
                break
        if self.pos < self.stop:
            self.pos += 1
        return "".join(out)

    def _backslash(self) -> bool:
        """Skip a backslash; False when it joined the next line instead."""
        after = self.pos + 1
        rest = self.text[after : after + 2]
        if after >= self.stop or rest[:1] == "\n" or rest == "\r\n":
            self.pos = self.nxt
            self.fill()
            return False
        self.pos = after
        return True

    def _quoted(self, quote: str) -> str:
        text, first = self.text, self.line
        p, out = self.pos + 1, []
        while True:
            if quote == "'":
                end = text.find("'", p)
                p = len(text) if end < 0 else end
                out.append(text[self.pos + 1 : p])
            else:
                m = _DQ_RUN.match(text, p)
                assert m is not None
                out.append(m[0])
                p = m.end()
            if p >= len(text):
                raise self.error(f"unterminated {quote} quote", first)
            if text[p] == quote:
                break
            nxt = text[p + 1 : p + 3]  # a backslash inside "..."
            if not nxt:
                raise self.error(f"unterminated {quote} quote", first)
            if nxt[0] == "\n" or nxt == "\r\n":
                p += 1 + len(nxt.split("\n")[0]) + 1  # joins the lines
            else:
                out.append(nxt[0])
                p += 2
        self.reach(p)
        self.pos = p + 1
        return "".join(out)
