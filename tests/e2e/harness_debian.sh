# Self-test of the debian fixture: debootstrap --variant=minbase bookworm from the host's mirror (slow the first
# time, then cached under tests/.cache), with the host's apt sources and no Valid-Until check.

rootfs=$(fixture_rootfs debian)
if [ -z "$rootfs" ] || [ ! -x "$rootfs/usr/bin/apt-get" ]; then
	fail "debian: fixture_rootfs builds a rootfs" "debootstrap failed (see the log above)"
	return 0 2>/dev/null || exit 0
fi
pass "debian: fixture_rootfs builds a rootfs"
t_eq "debian: it is bookworm" 12 "$(cut -d. -f1 "$rootfs/etc/debian_version")"
t_ok "debian: the host's apt sources are in it" cmp /etc/apt/sources.list.d/debian.sources \
	"$rootfs/etc/apt/sources.list.d/debian.sources"
t_fail "debian: debootstrap's own sources.list is gone" test -e "$rootfs/etc/apt/sources.list"
t_eq "debian: apt ignores the snapshot's Valid-Until" 'Acquire::Check-Valid-Until "false";' \
	"$(cat "$rootfs/etc/apt/apt.conf.d/99qimg-snapshot")"
t_eq "debian: /dev, /proc, /sys are empty" "" "$(find "$rootfs/dev" "$rootfs/proc" "$rootfs/sys" -mindepth 1 -maxdepth 1)"
t_ok "debian: dpkg runs in a chroot" chroot "$rootfs" dpkg-query -W apt bash coreutils
t_eq "debian: fixture_rootfs is cached" "$rootfs" "$(fixture_rootfs debian)"

layout=$(fixture_layout debian)
m=$layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)
t_eq "debian: the layout has one gzip layer" "application/vnd.oci.image.layer.v1.tar+gzip" \
	"$(jq -r '[.layers[].mediaType] | join(" ")' "$m")"
t_ok "debian: the layer holds /usr/bin/apt-get" sh -c "gzip -dc '$layout/blobs/sha256/$(jq -r '.layers[0].digest' "$m" |
	cut -d: -f2)' | tar -t | grep -qx usr/bin/apt-get"
registry_start plain || fail "debian: registry_start" "did not start"
t_ok "debian: fixture_push debian" fixture_push debian
t_eq "debian: the registry holds it" "$FIXTURE_DIGEST" \
	"$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG/debian:latest")"
