#!/usr/bin/env bash
# tools.sh installs and builds what the end-to-end tests, the demo and the benchmarks run:
# Debian's runc, busybox-static, openssl and shellcheck, and bin/buildkitd, bin/buildctl,
# bin/registry, the stock cosign CLIs (v2, v3), actionlint and trivy, built from the
# pinned Go modules under tools/. It is what `make tools` runs.
#
# Idempotent: a binary is rebuilt only when it is missing or its stamp (bin/.stamp-NAME)
# no longer matches the version, the go.mod/go.sum of the module it is built from and its
# build arguments, so a second run takes well under a second. The BuildKit version must
# equal the root go.mod's, or the script fails.
#
# With arguments, only the named tools are built (and what they need): `make demo`
# builds what the demo uses and no more, `bash hack/tools.sh trivy` one tool. Without,
# every tool is built (make test, make tools).
#
# To add a tool, give it a module under tools/ and add one build_tool line at the end.
set -euo pipefail

wanted=("$@")
# want NAME says whether NAME is to be built this run.
want() {
	[ "${#wanted[@]}" -eq 0 ] && return 0
	local w
	for w in "${wanted[@]}"; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# apt_install PKG... installs the Debian packages that are not installed yet.
apt_install() {
	local missing=() p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		log "debian packages present: $*"
		return
	fi
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo -n)
		else
			die "missing Debian packages: ${missing[*]}; not root and no sudo: install them with
    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}
then run make tools again"
		fi
	fi
	log "installing debian packages: ${missing[*]}"
	local aptlog
	aptlog="$(mktemp)"
	if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		die "installing Debian packages ${missing[*]} failed (output above)"
	fi
	rm -f "$aptlog"
}

# mod_version DIR MODULE prints the version of MODULE that the Go module in DIR requires.
mod_version() {
	(cd "$root/$1" && go list -m -f '{{.Version}}' "$2") ||
		die "cannot read the version of $2 from $1/go.mod"
}

# build_tool NAME MODULE_DIR PKG VERSION [GO_BUILD_ARGS...] builds package PKG of the Go
# module in MODULE_DIR (relative to the repository root) into bin/NAME, unless bin/NAME
# exists and bin/.stamp-NAME records the same VERSION, module go.mod/go.sum and build
# arguments.
build_tool() {
	local name="$1" dir="$2" pkg="$3" version="$4"
	shift 4
	local out="$bin/$name" stamp="$bin/.stamp-$name" want
	want="$version $({ cat "$root/$dir/go.mod" "$root/$dir/go.sum"; printf '%s\n' "$pkg" "$@"; } | sha256sum | cut -c1-16)"
	if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		log "$name $version up to date"
		return
	fi
	log "building $name $version from $dir ($pkg); the first build of a tool takes minutes"
	prefetch_wait "$dir"
	mkdir -p "$bin"
	local start=$SECONDS
	# A line every 30 s, so that a long first build never looks stuck.
	( while sleep 30; do log "still building $name ($((SECONDS - start))s)"; done ) &
	local ticker=$!
	(cd "$root/$dir" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$out.tmp" "$@" "$pkg") ||
		{ kill "$ticker" 2>/dev/null; rm -f "$out.tmp"; die "building $name from $dir failed"; }
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	mv -f "$out.tmp" "$out"
	printf '%s\n' "$want" >"$stamp"
	log "built bin/$name in $((SECONDS - start))s"
}

# prefetch DIR... downloads, in the background, the modules that the Go modules in DIRs
# require and the module cache lacks. Go fetches GOMAXPROCS modules at a time — two on a
# 2-core machine — so a first build would wait on hundreds of downloads one pair at a
# time; fetched 16 at a time, while apt-get runs and earlier tools build, they are there
# when the build that needs them starts.
declare -A prefetching=()
prefetch() {
	local d
	for d in "$@"; do
		(cd "$root/$d" && GOMAXPROCS=16 go mod download >/dev/null 2>&1) &
		prefetching[$d]=$!
	done
}
# prefetch_wait DIR waits for DIR's prefetch. One that failed is no error: the build
# fetches what is missing and says why when it cannot.
prefetch_wait() {
	if [ -n "${prefetching[$1]:-}" ]; then
		wait "${prefetching[$1]}" || true
		unset "prefetching[$1]"
	fi
}
dirs=()
{ want buildkitd || want buildctl; } && dirs+=(tools/buildkit)
want registry && dirs+=(tools/registry)
want cosign-v2 && dirs+=(tools/cosign-v2)
want cosign-v3 && dirs+=(tools/cosign-v3)
want actionlint && dirs+=(tools/actionlint)
want trivy && dirs+=(tools/trivy)
# Every tool means make tools or make test, which builds the root module's tests next.
[ "${#wanted[@]}" -eq 0 ] && dirs+=(.)
prefetch "${dirs[@]}"

# Debian's packages: runc for buildkitd's OCI worker, busybox for the stand-in bases,
# openssl for the demo's certificates, shellcheck for make test's lint.
pkgs=(runc busybox-static openssl)
want shellcheck && pkgs+=(shellcheck)
apt_install "${pkgs[@]}"

# BuildKit: the daemon must speak exactly the API version that the root module's client
# was built against.
if want buildkitd || want buildctl; then
	bk="$(mod_version tools/buildkit github.com/moby/buildkit)"
	bk_root="$(mod_version . github.com/moby/buildkit)"
	[ "$bk" = "$bk_root" ] ||
		die "tools/buildkit/go.mod requires github.com/moby/buildkit $bk but go.mod requires $bk_root; set tools/buildkit to $bk_root (cd tools/buildkit && go get github.com/moby/buildkit@$bk_root && go mod tidy)"
	bk_ldflags="-X github.com/moby/buildkit/version.Version=$bk -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
	want buildkitd && build_tool buildkitd tools/buildkit github.com/moby/buildkit/cmd/buildkitd "$bk" -ldflags "$bk_ldflags" -tags "osusergo netgo static_build seccomp"
	want buildctl && build_tool buildctl tools/buildkit github.com/moby/buildkit/cmd/buildctl "$bk" -ldflags "$bk_ldflags"
fi

if want registry; then
	reg="$(mod_version tools/registry github.com/distribution/distribution/v3)"
	# The registry's own server, without the cloud storage drivers (tools/registry/cmd/registry).
	build_tool registry tools/registry github.com/wso2img/wso2img/tools/registry/cmd/registry "$reg" -ldflags "-X github.com/distribution/distribution/v3/version.version=$reg"
fi

# The stock cosign CLIs, v2 and v3: end-to-end tests check that the signatures and
# attestations wso2img makes with cosign's Go library verify with both.
if want cosign-v2; then
	cosign2="$(mod_version tools/cosign-v2 github.com/sigstore/cosign/v2)"
	build_tool cosign-v2 tools/cosign-v2 github.com/sigstore/cosign/v2/cmd/cosign "$cosign2" -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$cosign2"
fi
if want cosign-v3; then
	cosign3="$(mod_version tools/cosign-v3 github.com/sigstore/cosign/v3)"
	build_tool cosign-v3 tools/cosign-v3 github.com/sigstore/cosign/v3/cmd/cosign "$cosign3" -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$cosign3"
fi

# actionlint checks action.yml and the workflows under .github (make test runs it).
if want actionlint; then
	actionlint="$(mod_version tools/actionlint github.com/rhysd/actionlint)"
	build_tool actionlint tools/actionlint github.com/rhysd/actionlint/cmd/actionlint "$actionlint" -ldflags "-s -w -X github.com/rhysd/actionlint.version=$actionlint"
fi

# Trivy, the vulnerability scanner that the publish pipeline's scan stage runs (package
# scan), stamped with its version the way its release does (goreleaser.yml: ldflags
# app.ver without the "v", GOEXPERIMENT=jsonv2, which Trivy's code requires). The
# biggest of the tools: a first build takes about a quarter of an hour on 2 cores.
if want trivy; then
	trivy="$(mod_version tools/trivy github.com/aquasecurity/trivy)"
	GOEXPERIMENT=jsonv2 build_tool trivy tools/trivy github.com/aquasecurity/trivy/cmd/trivy "$trivy GOEXPERIMENT=jsonv2" -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${trivy#v}"
fi

# The root module's downloads, for the tests that make test builds next.
prefetch_wait .
