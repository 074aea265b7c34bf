#!/usr/bin/python3
"""Generate qimg's man pages from one source: each command's own --help text.

usage: mkman.py QIMG OUTDIR

qimg(1) comes from `qimg --help` plus docs/man/qimg.extra (the sections --help has no room for: exit status,
environment, files); qimg-COMMAND(1) from `qimg COMMAND --help` for every command `qimg --help` lists (and
qimg-system-SUB(1) from `qimg system SUB --help`). A --help text is read as: "Usage:" lines (SYNOPSIS), prose
paragraphs (DESCRIPTION), indented "TERM   text" lists (tagged paragraphs), "Options:" (OPTIONS), "Examples:"
(EXAMPLES), "Environment:" (ENVIRONMENT). So `qimg COMMAND --help` and `man qimg-COMMAND` never disagree.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SECTION_HEADS = {"options": "OPTIONS", "global options": "GLOBAL OPTIONS", "examples": "EXAMPLES",
                 "example": "EXAMPLES", "environment": "ENVIRONMENT", "commands": "COMMANDS"}


def run_help(qimg, args):
    out = subprocess.run([qimg] + args + ["--help"], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.startswith("Usage:"):
        sys.exit("mkman: %s %s --help failed (exit %d): %s" % (qimg, " ".join(args), out.returncode, out.stderr))
    return out.stdout


def esc(s):
    """Text for roff: backslashes, hyphens (so options copy and paste), a leading dot or quote."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s[:1] in (".", "'") else s


def paragraphs(text):
    paras, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def tagged(lines):
    """Indented "TERM   text" lines (text may continue on deeper-indented lines) -> roff .TP entries."""
    out, base = [], indent_of(lines[0])
    for line in lines:
        body = line.strip()
        m = re.match(r"(\S.*?)(?:\s{2,}|$)(.*)$", body)
        option = re.match(r"(-\S.*?)\s{2,}(\S.*)$", body)  # "      --long-only ARG   text" (run's style)
        if option and indent_of(line) > base + 1:
            m = option
        if m and (indent_of(line) <= base + 1 or option):
            out += [".TP", ".B " + esc(m.group(1))]
            if m.group(2):
                out.append(esc(m.group(2)))
        else:
            out.append(esc(body))
    return out


def prose(lines):
    """A paragraph: plain text lines and indented "TERM   text" lists, in the order they come."""
    out, i = [".PP"], 0
    while i < len(lines):
        j = i
        if indent_of(lines[i]) == 0:
            while j < len(lines) and indent_of(lines[j]) == 0:
                j += 1
            out += ([".PP"] if i else []) + [esc(x) for x in lines[i:j]]
        else:
            while j < len(lines) and indent_of(lines[j]) > 0:
                j += 1
            out += tagged(lines[i:j])
        i = j
    return out


def examples(lines):
    out = [".PP", ".RS 4", ".nf"]
    out += [esc(line.strip()) for line in lines]
    return out + [".fi", ".RE"]


def convert(text):
    """A --help text -> (synopsis lines, [(SECTION, roff lines)])."""
    paras = paragraphs(text)
    usage = [re.sub(r"^Usage:\s*", "", paras[0][0])] + [line.strip() for line in paras[0][1:]]
    sections = []
    for p in paras[1:]:
        head = p[0].strip().rstrip(":").lower()
        if p[0].endswith(":") and head in SECTION_HEADS and indent_of(p[0]) == 0:
            name, body = SECTION_HEADS[head], p[1:]
            roff = examples(body) if name == "EXAMPLES" else tagged(body) if body else []
        elif head.startswith("environment:"):
            name, roff = "ENVIRONMENT", [".PP", esc(p[0].split(":", 1)[1].strip())] + [esc(x.strip()) for x in p[1:]]
        elif indent_of(p[0]) > 0 and all(indent_of(x) > 0 for x in p):
            name, roff = "DESCRIPTION" if not sections else sections[-1][0], tagged(p)
            if name not in ("OPTIONS", "DESCRIPTION"):
                name = "DESCRIPTION"
        else:
            name, roff = "DESCRIPTION", prose(p)
        for sname, sroff in sections:
            if sname == name:
                sroff.extend(roff)
                break
        else:
            sections.append((name, roff))
    return usage, sections


def page(title, summary, version, usage, sections, see_also, extra=""):
    out = ['.TH %s 1 "" "qimg %s" "qimg Manual"' % (title.upper(), version), ".SH NAME",
           "%s \\- %s" % (esc(title), esc(summary)), ".SH SYNOPSIS"]
    for u in usage:
        out += [".B " + esc(u.split(" ", 1)[0]), esc(u.split(" ", 1)[1]) if " " in u else "", ".br"]
    order = ["DESCRIPTION", "COMMANDS", "OPTIONS", "GLOBAL OPTIONS", "ENVIRONMENT", "EXAMPLES"]
    for name in order:
        for sname, roff in sections:
            if sname == name:
                out += [".SH " + name] + roff
    out += [extra.rstrip("\n")] if extra else []
    out += [".SH SEE ALSO", ", ".join("\\fB%s\\fR(1)" % esc(s) for s in see_also)]
    return "\n".join(line for line in out if line != "") + "\n"


def commands(top_help):
    """(name, summary) for every command `qimg --help` lists."""
    out, inside = [], False
    for line in top_help.split("\n"):
        if line.strip() == "Commands:":
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            name, summary = line.strip().split(None, 1)
            out.append((name, summary.strip()))
    return out


def subcommands(help_text):
    """(name, summary) of the "  NAME [ARGS]   summary" lines of a command with subcommands."""
    out = []
    for line in help_text.split("\n"):
        m = re.match(r"  ([a-z]+)\b.*?\s{2,}(\S.*)$", line)
        if m and indent_of(line) == 2:
            out.append((m.group(1), m.group(2).strip()))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    qimg, outdir = sys.argv[1], sys.argv[2]
    version = subprocess.run([qimg, "--version"], capture_output=True, text=True).stdout.split()[-1]
    top = run_help(qimg, [])
    cmds = commands(top)
    names = ["qimg"] + ["qimg-" + c for c, _ in cmds]
    os.makedirs(outdir, exist_ok=True)
    pages = {}
    usage, sections = convert(top)
    with open(os.path.join(HERE, "qimg.extra")) as f:
        extra = f.read()
    pages["qimg"] = page("qimg", top.split("\n\n")[1].strip().rstrip("."), version, usage, sections,
                         names[1:], extra)
    for name, summary in cmds:
        subs = subcommands(run_help(qimg, [name])) if name == "system" else []
        allnames = names + ["qimg-%s-%s" % (name, sub) for sub, _ in subs]
        for args, title, summ in [([name], "qimg-" + name, summary)] + \
                [([name, sub], "qimg-%s-%s" % (name, sub), ssum) for sub, ssum in subs]:
            usage, sections = convert(run_help(qimg, args))
            pages[title] = page(title, summ, version, usage, sections, ["qimg"] + [n for n in allnames[1:] if n != title])
    for name, text in pages.items():
        with open(os.path.join(outdir, name + ".1"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
