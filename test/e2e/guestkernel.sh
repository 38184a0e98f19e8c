# Finds (or downloads) a Linux kernel a test guest can boot, for the e2e
# scenarios that need a guest OS (unplug: the guest must release the
# device). Sourced by run.sh; prints the vmlinuz path. The VM suite's cache
# (test/vm/run.sh) is used when it holds one; otherwise Debian's cloud
# kernel is downloaded with apt-get into the same cache.
guest_kernel() {
	local cache=${FDBHOOK_VM_CACHE:-/var/cache/fdbhook-vm} k pkg ver tmp
	k=$(find "$cache" -mindepth 2 -maxdepth 2 -name vmlinuz -size +1k 2>/dev/null | sort | tail -n 1)
	if [ -n "$k" ]; then
		echo "$k"
		return 0
	fi
	mkdir -p "$cache/e2e"
	if [ -s "$cache/e2e/vmlinuz" ]; then
		echo "$cache/e2e/vmlinuz"
		return 0
	fi
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		test/apt-locked.sh apt-get update -qq >&2 || true
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || return 1
	ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
	tmp=$(mktemp -d "$cache/.e2e.XXXXXX")
	if (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) &&
		dpkg-deb -x "$tmp"/*.deb "$tmp/root"; then
		cp "$tmp"/root/boot/vmlinuz-* "$cache/e2e/vmlinuz"
	fi
	rm -rf "$tmp"
	[ -s "$cache/e2e/vmlinuz" ] && echo "$cache/e2e/vmlinuz"
}
