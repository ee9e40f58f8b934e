"""How every result type shows itself: ``summary()`` in a terminal, HTML in a notebook.

A result class defines ``__rich__`` (a rich renderable: a table, text, a group) and inherits
:class:`Shown`; ``summary()`` prints it at the terminal's width (160 columns when the output is
not a terminal), ``summary(print_=False)`` returns it as text, and ``_repr_html_`` renders the
same content as HTML for notebooks.
"""

from __future__ import annotations

import shutil
import sys


def console(file=None):
    """A rich Console as wide as the terminal, or 160 columns when not writing to one."""
    from rich.console import Console

    out = file or sys.stdout
    width = shutil.get_terminal_size((160, 40)).columns if getattr(out, "isatty", lambda: False)() else 160
    return Console(width=max(width, 80), file=file)


def render_text(renderable, width: int = 160) -> str:
    from rich.console import Console

    c = Console(width=width, record=True, file=_Null())
    c.print(renderable)
    return c.export_text()


def render_html(renderable, width: int = 160) -> str:
    from rich.console import Console

    c = Console(width=width, record=True, file=_Null())
    c.print(renderable)
    return c.export_html(inline_styles=True, code_format="<pre style=\"font-size:12px;line-height:1.3\">{code}</pre>")


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


class Shown:
    """Mixin: ``summary()`` and ``_repr_html_`` from the class's ``__rich__``."""

    def __rich__(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def summary(self, print_: bool = True) -> str | None:
        """Print the report (rich tables); with ``print_=False`` return it as text instead."""
        if print_:
            console().print(self.__rich__())
            return None
        return render_text(self.__rich__())

    def _repr_html_(self) -> str:
        return render_html(self.__rich__())
