"""Man pages and shell completions agree with --help.

For every command, the options `sbx CMD --help-all` prints (the command's and
the global group) are exactly the options the man page documents (its
`*--option*` term lines) and the options each completion script offers (bash
and fish by asking them to complete `sbx CMD -`, zsh from the specs its
_sbx_CMD function hands to _arguments); every option the man pages mention
elsewhere exists. The pages build with scdoc, the scripts pass the shells'
syntax checks, and bash and fish complete commands, option values, image names
and sandbox names (from a fake `sbx` printing canned tables). No sandbox runs.
"""
import os
import re
import shlex
import shutil
import subprocess
import unittest

from sbxtest import SRCDIR, SbxTestCase

COMMANDS = ["run", "pull", "load", "images", "inspect", "rmi", "prune", "ps", "logs", "exec",
            "stop", "kill", "rm", "check", "network", "login", "logout"]
MAN = os.path.join(SRCDIR, "docs", "man")
COMPLETIONS = os.path.join(SRCDIR, "completions")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
HELP_SECTION = "Help Options"

# What the fake sbx prints: the real tables' layout (header line, name first).
IMAGES_TABLE = "".join("%-40s %-12s %-22s %s\n" % row for row in [
    ("NAME", "ID", "CREATED", "SIZE"),
    ("busybox:latest", "0123456789ab", "2024-01-01T00:00:00", "4.3 MB"),
    ("alpine:3.19", "abcdef012345", "2024-01-02T00:00:00", "7.4 MB"),
    ("<none>", "fedcba987654", "2024-01-03T00:00:00", "1.0 kB"),
])
PS_TABLE = ("NAME         ID            IMAGE            STATUS\n"
            "web          0123456789ab  busybox:latest   running\n"
            "db           abcdef012345  alpine:3.19      exited (0)\n")
FAKE_SBX = """#!/bin/sh
# A stand-in for sbx: canned 'images' and 'ps' tables, whatever the options.
case "$1" in
  images) cat <<'EOF'
%sEOF
  ;;
  ps) cat <<'EOF'
%sEOF
  ;;
  *) exit 125 ;;
esac
""" % (IMAGES_TABLE, PS_TABLE)


def parse_help(text):
    """{section title: [(short option or None, long option)]} of GLib's help,
    plus the command names under 'Commands:' (sbx's own --help)."""
    sections, commands, current = {}, [], None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
            sections.setdefault(current, [])
            continue
        if current == "Commands":
            m = re.match(r"^\s+([a-z][\w-]*)\s", line)
            if m:
                commands.append(m.group(1))
            continue
        m = re.match(r"^\s+(?:(-[^-\s]), )?(--[A-Za-z0-9][\w-]*)", line)
        if m and current:
            sections[current].append((m.group(1), m.group(2)))
    return sections, commands


def option_pairs(sections):
    """Every (short, long) pair outside the help group."""
    return {p for title, pairs in sections.items() if title != HELP_SECTION for p in pairs}


def flat(pairs):
    return {o for p in pairs for o in p if o}


def split_code_blocks(text):
    """(prose, code lines) of an scdoc source."""
    prose, code, in_code = [], [], False
    for line in text.splitlines():
        if line.strip() == "```":
            in_code = not in_code
        elif in_code:
            code.append(line)
        else:
            prose.append(line)
    return "\n".join(prose), code


def man_term_pairs(text):
    """(short, long) of each option term: a line '*-e*, *--env* _KEY_...' after
    a blank line, its description indented by a tab on the next lines."""
    pairs = set()
    lines = split_code_blocks(text)[0].splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("*-") or (i > 0 and lines[i - 1].strip()) or \
                i + 1 == len(lines) or not lines[i + 1].startswith("\t"):
            continue
        shorts = re.findall(r"\*(-[^-\s*])\*", line)
        longs = re.findall(r"\*(--[A-Za-z0-9][\w-]*)\*", line)
        if len(longs) == 1 and len(shorts) <= 1:
            pairs.add((shorts[0] if shorts else None, longs[0]))
        else:
            pairs.add(("?", line))  # not a term line the tests understand
    return pairs


def man_mentions(text):
    """Long options mentioned anywhere (code lines only when they run sbx)."""
    prose, code = split_code_blocks(text)
    words = prose + "\n" + "\n".join(l for l in code if l.lstrip().startswith("sbx "))
    return set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", words))


class TestDocs(SbxTestCase):
    mode = "single"  # only --help runs; no subordinate range needed

    # -- what sbx says ---------------------------------------------------
    def help_of(self, cmd):
        """(pairs of options, help options) of `sbx CMD --help-all`."""
        r = self.sbx_cmd([cmd, "--help-all"], root=False)
        if r.rc != 0 or "Usage:" not in r.out:
            self.fail("'sbx %s --help-all' failed: is '%s' a command yet?\n%r" % (cmd, cmd, r))
        sections, _ = parse_help(r.out)
        return option_pairs(sections), flat(sections.get(HELP_SECTION, []))

    def top_help(self):
        r = self.sbx_cmd(["--help"], root=False)
        self.assertEqual(r.rc, 0, r)
        sections, commands = parse_help(r.out)
        self.assertTrue(commands, r)
        return option_pairs(sections), commands

    def global_pairs(self):
        pairs, _ = self.help_of("images")
        r = self.sbx_cmd(["images", "--help"], root=False)
        return pairs - option_pairs(parse_help(r.out)[0])

    def known_options(self):
        """Every long option some command (or sbx itself) accepts."""
        known = flat(self.top_help()[0])
        for cmd in COMMANDS:
            r = self.sbx_cmd([cmd, "--help-all"], root=False)
            if r.rc == 0:
                sections, _ = parse_help(r.out)
                known |= {l for pairs in sections.values() for _, l in pairs}
        return known

    def read(self, *path):
        with open(os.path.join(*path)) as f:
            return f.read()

    # -- man pages -------------------------------------------------------
    def check_man(self, cmd):
        pairs, _ = self.help_of(cmd)
        page = "sbx-%s.1.scd" % cmd
        text = self.read(MAN, page)
        self.assertRegex(text, r"(?m)^sbx-%s\(1\)" % re.escape(cmd))
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES",
                        "SEE ALSO"):
            self.assertRegex(text, r"(?m)^# %s$" % section, "%s: no %s section" % (page, section))
        self.assertIn("*sbx %s*" % cmd, text, "%s: the SYNOPSIS shows 'sbx %s'" % (page, cmd))
        documented = man_term_pairs(text)
        self.assertEqual(sorted(pairs - documented, key=str), [],
                         "%s: options of 'sbx %s --help-all' not documented" % (page, cmd))
        self.assertEqual(sorted(documented - pairs, key=str), [],
                         "%s: documented options 'sbx %s --help-all' does not print" % (page, cmd))
        unknown = man_mentions(text) - self.known_options()
        self.assertEqual(sorted(unknown), [], "%s mentions options no command has" % page)

    def test_man_sbx(self):
        top, commands = self.top_help()
        text = self.read(MAN, "sbx.1.scd")
        self.assertEqual(sorted(man_term_pairs(text), key=str),
                         sorted(top | self.global_pairs(), key=str),
                         "sbx.1: its options are sbx --help's and the global ones")
        for cmd in commands:
            self.assertIn("*sbx-%s*(1)" % cmd, text, "sbx.1 does not list %s" % cmd)
            self.assertTrue(os.path.exists(os.path.join(MAN, "sbx-%s.1.scd" % cmd)),
                            "no man page for sbx %s" % cmd)
        for env in ("SBX_ROOT", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "SBX_MAX_LAYER_SIZE"):
            self.assertIn("*%s*" % env, text)
        unknown = man_mentions(text) - self.known_options()
        self.assertEqual(sorted(unknown), [], "sbx.1 mentions options no command has")

    def test_man_pages_listed_in_meson(self):
        build = self.read(MAN, "meson.build")
        listed = set(re.findall(r"'(sbx(?:-[a-z]+)?)'", build))
        sources = {f[:-len(".1.scd")] for f in os.listdir(MAN) if f.endswith(".1.scd")}
        self.assertEqual(listed, sources)
        self.assertEqual(sources, {"sbx", "sbx-oci"} | {"sbx-" + c for c in COMMANDS})

    def test_man_sbx_oci(self):
        """sbx-oci.1 documents exactly the long options its commands and its
        global group accept, and names every command."""
        oci = os.path.join(os.path.dirname(self.sbx), "sbx-oci")
        r = self.run_as([oci, "--help-all"])
        self.assertEqual(r.rc, 0, r)
        sections, commands = parse_help(r.out)
        self.assertIn("create", commands)
        accepted = flat(option_pairs(sections))
        for cmd in commands:
            r = self.run_as([oci, cmd, "--help-all"])
            self.assertEqual(r.rc, 0, r)
            accepted |= flat(option_pairs(parse_help(r.out)[0]))
        text = self.read(MAN, "sbx-oci.1.scd")
        for cmd in commands:
            self.assertRegex(text, r"(?m)^\*%s\*" % cmd, "sbx-oci.1 does not describe %s" % cmd)
        accepted = {o for o in accepted if o.startswith("--")}
        mentioned = man_mentions(text)
        self.assertEqual(sorted(accepted - mentioned), [], "sbx-oci options not in sbx-oci.1")
        self.assertEqual(sorted(mentioned - accepted), [], "sbx-oci.1 mentions unknown options")

    def test_man_scdoc_builds(self):
        scdoc = shutil.which("scdoc")
        if not scdoc:
            self.skipTest("scdoc not installed")
        for page in sorted(os.listdir(MAN)):
            if not page.endswith(".scd"):
                continue
            with open(os.path.join(MAN, page), "rb") as f:
                p = subprocess.run([scdoc], stdin=f, capture_output=True)
            self.assertEqual(p.returncode, 0, "%s: %s" % (page, p.stderr.decode()))
            self.assertIn(b".TH", p.stdout, page)

    # -- completion scripts: syntax --------------------------------------
    def shell(self, name):
        path = shutil.which(name)
        if not path:
            self.skipTest("%s not installed" % name)
        return path

    def syntax(self, shell, script):
        p = subprocess.run([self.shell(shell), "-n", os.path.join(COMPLETIONS, script)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")

    def test_bash_syntax(self):
        self.syntax("bash", "sbx.bash")

    def test_zsh_syntax(self):
        self.syntax("zsh", "_sbx")

    def test_fish_syntax(self):
        self.syntax("fish", "sbx.fish")

    def test_meson_installs_completions(self):
        build = self.read(COMPLETIONS, "meson.build")
        for needle in ("'bash-completion' / 'completions'", "rename : 'sbx'",
                       "'zsh' / 'site-functions'", "'fish' / 'vendor_completions.d'"):
            self.assertIn(needle, build)

    # -- bash --------------------------------------------------------------
    def fake_bin(self):
        d = os.path.join(self.tmp, "bin")
        if not os.path.isdir(d):
            os.mkdir(d)
            with open(os.path.join(d, "sbx"), "w") as f:
                f.write(FAKE_SBX)
            os.chmod(os.path.join(d, "sbx"), 0o755)
        return d

    def bash_complete(self, line, bash_completion=None):
        """COMPREPLY for `line` (the cursor at its end), as bash would ask;
        with the bash-completion package loaded (None: when installed)."""
        bash = self.shell("bash")
        if bash_completion is None:
            bash_completion = os.path.exists(BASH_COMPLETION)
        elif bash_completion and not os.path.exists(BASH_COMPLETION):
            self.skipTest("bash-completion not installed")
        # Words as readline splits them: at blanks, and around ':' and '='.
        words = re.findall(r"[^\s=:]+|[=:]", line)
        if line.endswith(" ") or not words:
            words.append("")
        script = "\n".join([
            ". %s" % shlex.quote(BASH_COMPLETION) if bash_completion else "",
            ". %s" % shlex.quote(os.path.join(COMPLETIONS, "sbx.bash")),
            "spec=$(complete -p sbx) || exit 3",
            "fn=${spec#*-F }; fn=${fn%% *}",
            "COMP_LINE=%s; COMP_POINT=${#COMP_LINE}" % shlex.quote(line),
            "COMP_WORDS=(%s); COMP_CWORD=%d" % (" ".join(shlex.quote(w) for w in words),
                                                len(words) - 1),
            '"$fn" sbx "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
            "printf '%s\\n' \"${COMPREPLY[@]}\"",
        ])
        env = {"PATH": self.fake_bin() + ":/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8"}
        p = subprocess.run([bash, "--norc", "--noprofile", "-c", script], cwd=self.tmp, env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "%r: %s" % (line, p.stderr))
        return [l for l in p.stdout.splitlines() if l]

    def check_bash(self, cmd):
        pairs, help_opts = self.help_of(cmd)
        offered = set(self.bash_complete("sbx %s -" % cmd))
        self.assertEqual(sorted(flat(pairs) - offered), [], "bash: options of sbx %s missing" % cmd)
        self.assertEqual(sorted(offered - flat(pairs) - help_opts), [],
                         "bash: sbx %s has no such options" % cmd)

    def test_bash_completes(self, bash_completion=True):
        c = lambda line: self.bash_complete(line, bash_completion)
        self.assertEqual(c("sbx ru"), ["run"])
        self.assertEqual(sorted(c("sbx run --net")),
                         ["--net-allow", "--net-log", "--network", "--network-alias"])
        self.assertEqual(sorted(c("sbx run --network ")),
                         ["host", "none", "slirp", "slirp:allow_host_addresses=false",
                          "slirp:allow_host_loopback=true", "slirp:tcp_relay=true"])
        self.assertEqual(sorted(c("sbx run --network slirp:")),
                         ["allow_host_addresses=false", "allow_host_loopback=true", "tcp_relay=true"])
        self.assertEqual(sorted(c("sbx rmi ")), ["alpine:3.19", "busybox:latest"])
        self.assertEqual(c("sbx rmi busy"), ["busybox:latest"])
        self.assertEqual(c("sbx rmi busybox:"), ["latest"])
        self.assertEqual(sorted(c("sbx kill ")), ["db", "web"])
        self.assertIn("KILL", c("sbx kill -s "))
        self.assertEqual(sorted(c("sbx images --format ")), ["json", "table"])
        self.assertEqual(sorted(c("sbx inspect --format ")), ["json", "text"])
        self.assertEqual(sorted(c("sbx run --userns ")), ["auto", "range", "single"])
        self.assertEqual(sorted(c("sbx load --log-level ")), ["debug", "error", "info", "warn"])
        self.assertIn("NET_ADMIN", c("sbx run --cap-add NET_"))
        self.assertNotIn("web", c("sbx stop -t "))  # -t takes seconds
        # Options stop at IMAGE: what follows is the sandbox's command line.
        self.assertEqual(c("sbx run busybox -"), [])
        open(os.path.join(self.tmp, "image.tar"), "w").close()
        open(os.path.join(self.tmp, "notes.txt"), "w").close()
        os.mkdir(os.path.join(self.tmp, "layout"))
        offered = c("sbx run ")
        for want in ("busybox:latest", "alpine:3.19", "image.tar", "layout"):
            self.assertIn(want, offered)
        self.assertNotIn("notes.txt", offered)
        self.assertNotIn("<none>", offered)
        self.assertIn("image.tar", c("sbx load "))

    def test_bash_completes_without_bash_completion(self):
        self.test_bash_completes(bash_completion=False)

    # -- zsh ---------------------------------------------------------------
    def zsh(self, code):
        zsh = self.shell("zsh")
        script = "source %s\n%s" % (shlex.quote(os.path.join(COMPLETIONS, "_sbx")), code)
        p = subprocess.run([zsh, "-f", "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines()

    def check_zsh(self, cmd):
        pairs, help_opts = self.help_of(cmd)
        specs = self.zsh("_arguments() { print -rl -- \"$@\" }\n_sbx_%s" % cmd)
        self.assertIn(":", specs, "_sbx_%s: _arguments without ':' before its specs" % cmd)
        offered = set()
        for spec in specs[specs.index(":") + 1:]:
            m = re.match(r"^(?:\([^)]*\))?\*?(-[^\[=+:]+?)[-+]?=?(?:\[|:|$)", spec)
            if m:
                offered.add(m.group(1))
        self.assertEqual(sorted(flat(pairs) - offered), [], "zsh: options of sbx %s missing" % cmd)
        self.assertEqual(sorted(offered - flat(pairs) - help_opts), [],
                         "zsh: sbx %s has no such options" % cmd)

    # -- fish --------------------------------------------------------------
    def fish_complete(self, line):
        fish = self.shell("fish")
        script = "source %s; complete -C %s" % (shlex.quote(os.path.join(COMPLETIONS, "sbx.fish")),
                                                shlex.quote(line))
        env = {"PATH": self.fake_bin() + ":/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8",
               "XDG_CONFIG_HOME": self.tmp, "XDG_DATA_HOME": self.tmp}
        p = subprocess.run([fish, "--no-config", "-c", script], cwd=self.tmp, env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l.split("\t")[0] for l in p.stdout.splitlines() if l]

    def check_fish(self, cmd):
        pairs, help_opts = self.help_of(cmd)
        offered = set(self.fish_complete("sbx %s -" % cmd))
        self.assertEqual(sorted(flat(pairs) - offered), [], "fish: options of sbx %s missing" % cmd)
        self.assertEqual(sorted(offered - flat(pairs) - help_opts), [],
                         "fish: sbx %s has no such options" % cmd)

    def test_fish_completes(self):
        c = self.fish_complete
        self.assertEqual(c("sbx ru"), ["run"])
        self.assertEqual(sorted(c("sbx run --net")),
                         ["--net-allow", "--net-log", "--network", "--network-alias"])
        self.assertEqual(sorted(c("sbx run --network ")),
                         ["host", "none", "slirp", "slirp:allow_host_addresses=false",
                          "slirp:allow_host_loopback=true", "slirp:tcp_relay=true"])
        self.assertEqual(sorted(c("sbx rmi ")), ["alpine:3.19", "busybox:latest"])
        self.assertEqual(sorted(c("sbx kill ")), ["db", "web"])
        self.assertIn("KILL", c("sbx kill -s "))
        self.assertEqual(sorted(c("sbx inspect --format ")), ["json", "text"])
        self.assertEqual(c("sbx run busybox -"), [])

    # -- every script knows every command ---------------------------------
    def test_completions_know_every_command(self):
        _, commands = self.top_help()
        want = sorted(commands)
        self.assertEqual(sorted(set(COMMANDS)), want, "test_docs.COMMANDS is not sbx --help's list")
        self.assertEqual(sorted(self.bash_complete("sbx ")), want, "bash")
        self.assertEqual(sorted(self.fish_complete("sbx ")), want, "fish")
        described = self.zsh("_describe() { print -rl -- ${(P)${@[-1]}} }\n_sbx_commands")
        self.assertEqual(sorted(d.split(":")[0] for d in described), want, "zsh")
        top = flat(self.top_help()[0])
        self.assertEqual(sorted(self.bash_complete("sbx -")), sorted(top), "bash")
        self.assertEqual(sorted(self.fish_complete("sbx -")), sorted(top), "fish")

    # -- sbx-oci's completions ---------------------------------------------
    def oci_help(self, *args):
        oci = os.path.join(os.path.dirname(self.sbx), "sbx-oci")
        r = self.run_as([oci] + list(args) + ["--help-all"])
        self.assertEqual(r.rc, 0, r)
        sections, commands = parse_help(r.out)
        return flat(option_pairs(sections)), commands

    def oci_bash_complete(self, line):
        bash = self.shell("bash")
        words = re.findall(r"[^\s=:]+|[=:]", line)
        if line.endswith(" ") or not words:
            words.append("")
        script = "\n".join([
            ". %s" % shlex.quote(os.path.join(COMPLETIONS, "sbx-oci.bash")),
            "spec=$(complete -p sbx-oci) || exit 3",
            "fn=${spec#*-F }; fn=${fn%% *}",
            "COMP_LINE=%s; COMP_POINT=${#COMP_LINE}" % shlex.quote(line),
            "COMP_WORDS=(%s); COMP_CWORD=%d" % (" ".join(shlex.quote(w) for w in words),
                                                len(words) - 1),
            '"$fn" sbx-oci "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
            "printf '%s\\n' \"${COMPREPLY[@]}\"",
        ])
        p = subprocess.run([bash, "--norc", "--noprofile", "-c", script], cwd=self.tmp,
                           env={"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8"},
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "%r: %s" % (line, p.stderr))
        return set(l for l in p.stdout.splitlines() if l)

    def oci_fish_complete(self, line):
        fish = self.shell("fish")
        script = "source %s; complete -C %s" % (
            shlex.quote(os.path.join(COMPLETIONS, "sbx-oci.fish")), shlex.quote(line))
        env = {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8",
               "XDG_CONFIG_HOME": self.tmp, "XDG_DATA_HOME": self.tmp}
        p = subprocess.run([fish, "--no-config", "-c", script], cwd=self.tmp, env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return set(l.split("\t")[0] for l in p.stdout.splitlines() if l)

    def oci_zsh_specs(self, fn):
        zsh = self.shell("zsh")
        script = "source %s\n_arguments() { print -rl -- \"$@\" }\n%s" % (
            shlex.quote(os.path.join(COMPLETIONS, "_sbx-oci")), fn)
        p = subprocess.run([zsh, "-f", "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        offered = set()
        for spec in p.stdout.splitlines():
            if spec in ("-C", "-s", "-S"):  # _arguments' own flags
                continue
            m = re.match(r"^(?:\([^)]*\))?\*?(-[^\[=+:]+?)[-+]?=?(?:\[|:|$)", spec)
            if m:
                offered.add(m.group(1))
        return offered

    def test_oci_completion_syntax_and_install(self):
        self.syntax("bash", "sbx-oci.bash")
        self.syntax("zsh", "_sbx-oci")
        self.syntax("fish", "sbx-oci.fish")
        build = self.read(COMPLETIONS, "meson.build")
        for needle in ("'sbx-oci.bash', rename : 'sbx-oci'", "'_sbx-oci'", "'sbx-oci.fish'"):
            self.assertIn(needle, build)

    def test_oci_completions_agree_with_help(self):
        """Every sbx-oci command, and each command's options, exactly as its
        --help prints them, in bash, fish and zsh."""
        top, commands = self.oci_help()
        self.assertIn("ps", commands)
        help_opts = {"-h", "--help", "--help-all"}
        self.assertEqual(sorted(self.oci_bash_complete("sbx-oci ")), sorted(commands), "bash")
        self.assertEqual(sorted(self.oci_fish_complete("sbx-oci ")), sorted(commands), "fish")
        self.assertEqual(sorted(self.oci_bash_complete("sbx-oci -") - help_opts), sorted(top))
        self.assertEqual(sorted(self.oci_fish_complete("sbx-oci -") - help_opts), sorted(top))
        zsh_top = self.oci_zsh_specs("_sbx-oci") - help_opts
        self.assertEqual(sorted(zsh_top), sorted(top), "zsh: sbx-oci's global options")
        for cmd in commands:
            opts, _ = self.oci_help(cmd)
            for shell, offered in (("bash", self.oci_bash_complete("sbx-oci %s -" % cmd)),
                                   ("fish", self.oci_fish_complete("sbx-oci %s -" % cmd)),
                                   ("zsh", self.oci_zsh_specs("_sbx_oci_" + cmd))):
                self.assertEqual(sorted(offered - help_opts), sorted(opts),
                                 "%s: options of sbx-oci %s" % (shell, cmd))
        self.assertEqual(sorted(self.oci_bash_complete("sbx-oci list --format ")),
                         ["json", "table"])
        self.assertEqual(sorted(self.oci_fish_complete("sbx-oci --log-format ")), ["json", "text"])


def _add(kind, cmd):
    def test(self):
        getattr(self, "check_" + kind)(cmd)
    test.__name__ = "test_%s_%s" % (kind, cmd)
    test.__doc__ = "sbx %s: %s agrees with --help" % (cmd, kind)
    setattr(TestDocs, test.__name__, test)


for _cmd in COMMANDS:
    for _kind in ("man", "bash", "zsh", "fish"):
        _add(_kind, _cmd)

if __name__ == "__main__":
    unittest.main()
