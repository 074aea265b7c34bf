# Docs and install: every `qimg COMMAND --help` has examples; `make install DESTDIR=... PREFIX=/usr` puts the
# binaries, one man page per command (made from the --help texts) and the bash/zsh completions where expected;
# the installed qimg finds its qimg-pull; the pages render cleanly; completion works; `make uninstall` cleans up.

commands=$($QIMG --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
t_ok "help: qimg --help lists commands" test -n "$commands"
t_contains "help: qimg --help has examples" "Examples:" "$($QIMG --help)"
for c in $commands "system df" "system check" "system keeper"; do
	# shellcheck disable=SC2086 # "system df" is two words on purpose
	t_ok "help: qimg $c --help exits 0" $QIMG $c --help
	out=$(cat "$T_OUT") err=$(cat "$T_ERR")
	t_contains "help: qimg $c --help starts with Usage" "Usage: qimg $c" "$(head -n 1 <<<"$out")"
	printf '%s\n' "$out" >"$TMPD/help.txt"
	t_ok "help: qimg $c --help has examples" grep -qE '^Examples?:' "$TMPD/help.txt"
	t_eq "help: qimg $c --help writes nothing on stderr" "" "$err"
done

# ---- make install into a DESTDIR, from a build of its own (the tree's binaries stay untouched) ----
DEST=$TMPD/dest
MK=(make -C "$QIMG_ROOT" -j2 BUILD="$TMPD/build" OUT="$TMPD/out" PREFIX=/usr DESTDIR="$DEST")
mkdir -p "$TMPD/out"
if ! "${MK[@]}" install >"$TMPD/install.log" 2>&1; then
	fail "install: make install DESTDIR PREFIX=/usr" "$(tail -n 5 "$TMPD/install.log")"
	exit 0
fi
pass "install: make install DESTDIR PREFIX=/usr"
t_ok "install: qimg in /usr/bin, mode 0755" test "$(stat -c %a "$DEST/usr/bin/qimg")" = 755
t_ok "install: qimg-pull in /usr/libexec/qimg" test -x "$DEST/usr/libexec/qimg/qimg-pull"
t_ok "install: no qimg-pull beside qimg" test ! -e "$DEST/usr/bin/qimg-pull"
t_ok "install: bash completion" test -f "$DEST/usr/share/bash-completion/completions/qimg"
t_ok "install: zsh completion" test -f "$DEST/usr/share/zsh/site-functions/_qimg"
for c in "" $commands system-df system-check system-keeper; do
	page=$DEST/usr/share/man/man1/qimg${c:+-$c}.1
	t_ok "man: qimg${c:+-$c}(1) installed" test -f "$page"
	t_ok "man: qimg${c:+-$c}(1) renders without warnings" sh -c "groff -man -Tutf8 -ww -z '$page' 2>&1 | grep . && exit 1 || exit 0"
	t_ok "man: qimg${c:+-$c}(1) has NAME, SYNOPSIS, EXAMPLES, SEE ALSO" sh -c \
		"for s in NAME SYNOPSIS EXAMPLES 'SEE ALSO'; do grep -q \"^.SH \$s\" '$page' || exit 1; done"
done
t_contains "man: qimg(1) documents the exit codes" "125" "$(man -l "$DEST/usr/share/man/man1/qimg.1" 2>/dev/null)"
t_contains "man: qimg-load(1) has the --tag option" "--tag NAME" "$(man -l "$DEST/usr/share/man/man1/qimg-load.1" 2>/dev/null)"

# The installed qimg (not the tree's) hands heavy commands to the installed qimg-pull.
t_ok "install: installed qimg runs" env -u QIMG_PULL_HELPER "$DEST/usr/bin/qimg" --version
t_ok "install: installed qimg finds its qimg-pull (pull --help)" env -u QIMG_PULL_HELPER "$DEST/usr/bin/qimg" pull --help
t_contains "install: ... which answers" "Usage: qimg pull" "$(cat "$T_OUT")"
t_ok "install: load --help through qimg-pull" env -u QIMG_PULL_HELPER "$DEST/usr/bin/qimg" load --help
t_ok "install: qimg links libc only" sh -c "! ldd '$DEST/usr/bin/qimg' | grep -qE 'curl|crypto|jansson|archive'"

# ---- completion ----
comp_bash() { # WORDS...: the completions bash offers for the last word
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _qimg; echo "${COMPREPLY[*]}"' \
		_ "$DEST/usr/share/bash-completion/completions/qimg" "$@"
}
t_eq "bash: commands" "pull" "$(comp_bash "$QIMG" pu)"
t_contains "bash: a command's options from its --help" "--password-stdin" "$(comp_bash "$QIMG" login --)"
t_eq "bash: system subcommands" "df check keeper" "$(comp_bash "$QIMG" system '')"
t_eq "bash: option values" "host none" "$(comp_bash "$QIMG" run --net '')"
if command -v zsh >/dev/null; then
	t_ok "zsh: _qimg parses" zsh -n "$DEST/usr/share/zsh/site-functions/_qimg"
	t_eq "zsh: compinit picks _qimg up for qimg" _qimg "$(zsh -fc "fpath=('$DEST/usr/share/zsh/site-functions' \$fpath);
		autoload -Uz compinit; compinit -u -d '$TMPD/zcompdump'; print \${_comps[qimg]}")"
else
	skip "zsh: completion" "zsh not installed"
fi

t_ok "uninstall: make uninstall" "${MK[@]}" uninstall
t_eq "uninstall: no file left" "" "$(find "$DEST" -type f)"
