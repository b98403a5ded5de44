"""Spotting programs that would wait for a terminal: editors, pagers, top, man, bare REPLs.

`refusal(command)` reads the command with `shlex`, splits it into simple commands at
`;`, `&&`, `||`, `|`, `&`, newlines and parentheses, skips assignments, redirections
and wrappers (`sudo`, `env`, `timeout 5`, ...) and looks at each command word. Words
in arguments, quotes and here-documents do not count: `grep vim`, `git log`,
`python script.py` and `python -c ...` are fine.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

EDITORS = {"vi", "vim", "nvim", "gvim", "vimdiff", "view", "nano", "emacs", "pico", "ed", "joe", "micro"}  # fmt: skip
PAGERS = {"less", "more", "most"}
MONITORS = {"top", "htop", "btop", "watch"}
SHELLS = {"bash", "sh", "zsh", "dash", "fish"}
PYTHONS = re.compile(r"(i?python)(\d+(\.\d+)*)?$")
# Option letters that give a REPL something to run (or make it print and exit).
PROGRAM_FLAGS = {"python": "cmVh?", "ipython": "cmVh?", "node": "epvhc", "shell": "cs"}
LONG_PROGRAM_FLAGS = {"--version", "--help", "--eval", "--print", "--check", "--test", "--command"}
WRAPPERS = {"sudo", "env", "exec", "command", "builtin", "nohup", "nice", "time", "stdbuf", "xargs"}
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}"}
HEREDOC = re.compile(r"(?<!<)<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
FD_PREFIX = re.compile(r"(?<![\w$])\d+(?=[<>])")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Fast path: a command line that names none of these words cannot be refused.
SUSPECT = re.compile(
    r"(?<![\w.-])(?:"
    + "|".join(sorted(EDITORS | PAGERS | MONITORS | SHELLS | {"man", "node"}))
    + r"|i?python[\d.]*)(?![\w.-])"
)


@dataclass
class Simple:
    """One simple command: its words, and whether its stdin comes from a pipe or file."""

    words: list[str]
    fed: bool = False


def _strip_heredocs(command: str) -> str:
    kept: list[str] = []
    pending: list[str] = []
    for line in command.split("\n"):
        if pending:
            if line.strip() == pending[0]:
                pending.pop(0)
            continue
        kept.append(line)
        pending.extend(match.group(2) for match in HEREDOC.finditer(line))
    return "\n".join(kept)


def split_commands(command: str) -> list[Simple] | None:
    """The simple commands of a shell command line; None when it does not parse."""
    lexer = shlex.shlex(
        FD_PREFIX.sub("", _strip_heredocs(command)), posix=True, punctuation_chars="();<>|&\n"
    )
    lexer.whitespace = " \t\r"
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    commands = [Simple([])]
    skip_target = False
    for token in tokens:
        if token and set(token) <= set("();<>|&\n"):
            if "<" in token or ">" in token:
                skip_target = True
                commands[-1].fed |= "<" in token
                continue
            commands.append(Simple([], fed=token in ("|", "|&")))
        elif skip_target:
            skip_target = False
        else:
            commands[-1].words.append(token)
    return [c for c in commands if c.words]


def _command_word(words: list[str]) -> tuple[str, list[str]] | None:
    """The program a simple command runs and its arguments, past wrappers and assignments."""
    i = 0
    while i < len(words):
        word = words[i]
        skippable = word in KEYWORDS or word in WRAPPERS or ASSIGNMENT.match(word)
        if skippable or (word.startswith("-") and i > 0):  # i > 0: a wrapper's option
            i += 1
        elif word == "timeout":
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 1
            i += 1  # the duration
        else:
            return word.rsplit("/", 1)[-1], words[i + 1 :]
    return None


def _runs_something(args: list[str], family: str) -> bool:
    letters = PROGRAM_FLAGS[family]
    for arg in args:
        if arg == "-" or not arg.startswith("-"):
            return True
        if arg.startswith("--"):
            if arg.split("=")[0] in LONG_PROGRAM_FLAGS:
                return True
        elif any(letter in arg[1:] for letter in letters):
            return True
    return False


def _repl_family(program: str) -> str | None:
    if match := PYTHONS.match(program):
        return match.group(1)
    if program == "node":
        return "node"
    return "shell" if program in SHELLS else None


def _refuse(program: str, args: list[str], fed: bool) -> str | None:
    if program in EDITORS:
        scripted = (program == "ed" and fed) or (
            program == "emacs" and {"--batch", "-batch", "--script"} & set(args)
        )
        if not scripted:
            return (
                f"`{program}` is an interactive editor and would hang (there is no terminal). "
                "Use the str_replace_editor tool to view and edit files, or `sed -i` for a "
                "mechanical substitution."
            )
    elif program in PAGERS:
        return (
            f"`{program}` is an interactive pager and would hang. Output is never paged here: "
            "use `cat FILE`, `head`/`tail`, or `sed -n 'START,ENDp' FILE` (or drop the `| "
            f"{program}`)."
        )
    elif program in MONITORS and not (program == "top" and "-b" in args):
        return f"`{program}` is interactive and would hang. Use `ps aux` (or `top -b -n 1`)."
    elif program == "man":
        return "`man` is interactive and would hang. Use `COMMAND --help` instead."
    elif (family := _repl_family(program)) and not fed and not _runs_something(args, family):
        how = {
            "python": "`python -c '...'`, or write a script (str_replace_editor) and run `python script.py`",
            "ipython": "`python -c '...'` or `python script.py`",
            "node": "`node -e '...'` or `node script.js`",
            "shell": f"`{program} -c '...'` or `{program} script.sh`",
        }[family]
        return f"`{program}` without a script starts an interactive session, which would hang. Use {how}."
    return None


def refusal(command: str) -> str | None:
    """Why `command` is refused (naming the alternative), or None when it may run."""
    if not SUSPECT.search(command):
        return None
    commands = split_commands(command)
    for simple in commands or []:
        found = _command_word(simple.words)
        if found and (reason := _refuse(found[0], found[1], simple.fed)):
            return f"Command refused, nothing was run: {reason}"
    return None
