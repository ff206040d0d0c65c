#!/usr/bin/env bash
# deps.sh installs what `make bench` needs beyond `make tools`, from Debian's packages:
# buildah (the rows that build the WSO2 Dockerfile with it) and GNU time (which measures
# a child's peak RSS exactly; see timeBin in env.go). Idempotent: packages already
# installed are not touched, so a second run takes a moment and needs no network.
#
# A failure here does not stop the benchmarks: the buildah rows then say why they could
# not run, and peak RSS falls back to the child's own rusage.
set -uo pipefail

log() { printf 'bench deps: %s\n' "$*" >&2; }

missing=()
for p in buildah time; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	log "debian packages present: buildah time"
	exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		log "missing ${missing[*]}, and not root: apt-get install -y ${missing[*]} (the benchmarks need root anyway)"
		exit 0
	fi
	sudo=(sudo -n)
fi
log "installing debian packages: ${missing[*]}"
aptlog="$(mktemp)"
trap 'rm -f "$aptlog"' EXIT
if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
	cat "$aptlog" >&2
	log "installing ${missing[*]} failed (output above); the benchmarks go on without them"
fi
exit 0
