# bash completion for qimg. Commands and options are read from qimg's own --help, so they never go stale;
# image names come from `qimg images`, container names from `qimg ps`. Installed as $(PREFIX)/share/bash-completion/completions/qimg.

_qimg_commands() {
	"$1" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'
}

_qimg_options() { # QIMG COMMAND [SUB]
	"$@" --help 2>/dev/null | grep -oE '(^|[ ,[])--?[a-zA-Z][a-zA-Z-]*' | tr -d ' ,[' | sort -u
}

_qimg_images() {
	"$1" images 2>/dev/null | awk 'NR > 1 && $2 != "<none>" { print $1 ":" $2 }'
}

_qimg_containers() { # names and short ids of the live runs
	"$1" ps --format json 2>/dev/null | grep -oE '"(Name|Id)":"[^"]+"' | sed -E 's/^"Name":"(.*)"$/\1/; s/^"Id":"(.{12}).*"$/\1/'
}

_qimg() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} qimg=${COMP_WORDS[0]}
	local cmd="" sub="" i nargs=0 w
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [ -z "$cmd" ]; then
			case $w in --store) i=$((i + 1)) ;; -*) ;; *) cmd=$w ;; esac
		elif [ "$cmd" = system ] && [ -z "$sub" ] && [[ $w != -* ]]; then
			sub=$w
		elif [[ $w != -* ]]; then
			nargs=$((nargs + 1))
		fi
	done
	case $prev in
	--store | --certs-dir | --cert-dir | -w | --workdir)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return ;;
	-o | --output | -i | --input | --authfile | --env-file | --cidfile)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return ;;
	--platform) w="linux/amd64 linux/arm64 linux/arm/v7 linux/386 linux/ppc64le linux/s390x" ;;
	--format) w="json table text oci-archive" ;;
	--overlay) w="kernel fuse" ;;
	--net | --network) w="host none" ;;
	--tls-verify) w="true false" ;;
	--pull) w="missing always never" ;;
	--userns) w="auto subuid single" ;;
	-s | --signal) [ "$cmd" = kill ] && w="KILL TERM INT HUP QUIT USR1 USR2 WINCH" ;;
	*) w="" ;;
	esac
	if [ -n "$w" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$w" -- "$cur")
		return
	fi
	if [ -z "$cmd" ]; then
		w="$(_qimg_commands "$qimg") --store -v -vv -q --version --help"
	elif [[ $cur == -* ]]; then
		w=$(_qimg_options "$qimg" "$cmd" $sub)
	else
		case $cmd in
		system) if [ -z "$sub" ]; then w="df check keeper"; elif [ "$sub" = keeper ]; then w="status stop"; fi ;;
		run | inspect | rmi | save) [ "$cmd" = run ] && [ $nargs -gt 0 ] || w=$(_qimg_images "$qimg") ;;
		export)
			if [ $nargs -eq 0 ]; then w=$(_qimg_images "$qimg"); else
				mapfile -t COMPREPLY < <(compgen -d -- "$cur")
				return
			fi ;;
		load) mapfile -t COMPREPLY < <(compgen -f -- "$cur") && return ;;
		kill) w=$(_qimg_containers "$qimg") ;;
		esac
	fi
	mapfile -t COMPREPLY < <(compgen -W "$w" -- "$cur")
	# "docker.io/library/busybox:latest" contains ':' (a word break for bash): complete past it
	if [[ $cur == *:* ]] && [[ $COMP_WORDBREAKS == *:* ]]; then
		COMPREPLY=("${COMPREPLY[@]#"${cur%"${cur##*:}"}"}")
	fi
}
complete -F _qimg qimg
