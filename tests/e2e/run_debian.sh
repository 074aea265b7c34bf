# qimg run of a real distribution (the debian fixture: bookworm minbase), root and rootless: the shadow tools
# (useradd, su), and the apt seed scenario: apt-get update + install with host networking, as the rootless user;
# the next run does not see the package.

registry_start plain || { fail "run_debian: registry_start" "did not start"; exit 0; }
fixture_push debian run/debian:12 || { fail "run_debian: push debian" "push failed (debootstrap?)"; exit 0; }
DEB=$REG/run/debian:12

t_setup() {
	t_ok "pull debian" $Q pull -q --tls-verify=false "$DEB"
}

t_shadow() {
	t_ok "useradd + su - user -c id" $Q run "$DEB" sh -c \
		'useradd -m -u 1500 -s /bin/bash alice && su - alice -c "id; pwd"'
	t_eq "su: the new user, in its home" "uid=1500(alice) gid=1500(alice) groups=1500(alice) /home/alice" \
		"$(tr '\n' ' ' <"$T_OUT" | sed 's/ $//')"
	t_ok "groupadd + usermod -aG: supplementary groups through su" $Q run "$DEB" sh -c \
		'groupadd -g 2500 team && useradd -m -u 1501 -G team bob && su bob -c "id -G"'
	t_eq "bob's groups" "1501 2500" "$(cat "$T_OUT")"
	t_ok "-u with a user made in the image's /etc/passwd" $Q run -u nobody "$DEB" id
	t_eq "-u nobody" "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)" "$(cat "$T_OUT")"
	t_ok "files owned by many ids" $Q run "$DEB" sh -c \
		'for i in 1 100 1000 65534; do touch /f$i && chown $i:$i /f$i; done; stat -c %u /f1 /f100 /f1000 /f65534 | tr "\n" " "'
	t_eq "owners kept" "1 100 1000 65534 " "$(cat "$T_OUT")"
}

t_apt() {
	if [ "$MODE" = root ]; then
		t_ok "apt-get update (root)" $Q run --net host "$DEB" sh -c 'apt-get update -qq && echo updated'
		return
	fi
	t_ok "apt seed scenario: update, install cowsay, run it (rootless)" $Q run --net host "$DEB" sh -c \
		'apt-get update && apt-get install -y cowsay && /usr/games/cowsay ok'
	t_contains "cowsay speaks" "< ok >" "$(cat "$T_OUT")"
	t_ok "the next run does not see cowsay" $Q run "$DEB" sh -c 'test ! -e /usr/games/cowsay && echo clean'
	t_eq "clean image" "clean" "$(cat "$T_OUT")"
	t_eq "nothing left in the store's tmp/" "" "$(ls -A "$USER_STORE/tmp")"
}

both t_setup
both t_shadow
both t_apt
