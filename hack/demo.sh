#!/usr/bin/env bash
# demo.sh is `make demo`: wso2img's main job end to end on this machine alone.
#
#  1. starts a CNCF distribution registry on loopback and a private buildkitd;
#  2. pushes a stand-in WSO2 Identity Server 5.8.0 base (busybox, wso2carbon 802:802,
#     the product home, WSO2_SERVER_HOME, ports 4000 9763 9443) under its official name
#     docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10 — mirrored to the local
#     registry, since the real one cannot be reached from here;
#  3. serves a JDBC-driver-like jar and its GPG signature over local HTTPS;
#  4. plans and builds examples/demo (the jar, a deployment.toml and a keystore), pushes
#     it by digest, tags it, and prints its digest and tags.
#
# Everything it starts is stopped at the end; its files are under .state/demo.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/.state/demo"
bin="$root/bin"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[ -x "$bin/wso2img" ] || die "bin/wso2img is missing: run make demo (it builds it)"
command -v openssl >/dev/null || die "openssl is needed to make the demo keystore (apt-get install openssl)"

rm -rf "$state"
mkdir -p "$state"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

step "building the demo's helpers (local registry + buildkitd, stand-in base, download site)"
go build -o "$bin/localenv" ./hack/localenv
go build -o "$bin/standin" ./hack/standin
go build -o "$bin/demoserve" ./hack/demoserve

# wait_for FILE PID NAME waits until FILE is written, failing if PID dies first.
wait_for() {
	local i
	for i in $(seq 1 600); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || die "$3 stopped while starting; its log: $(tail -n 20 "$state/$3.log")"
		sleep 0.1
	done
	die "$3 did not start within 60s; its log: $(tail -n 20 "$state/$3.log")"
}

step "starting a registry on loopback and a private buildkitd"
"$bin/localenv" --dir "$state/localenv" --env-file "$state/localenv.env" >"$state/localenv.log" 2>&1 &
pids+=($!)
wait_for "$state/localenv.env" "$!" localenv
"$bin/demoserve" --dir "$state/vendor" --env-file "$state/vendor.env" >"$state/demoserve.log" 2>&1 &
pids+=($!)
wait_for "$state/vendor.env" "$!" demoserve
# shellcheck disable=SC1091
. "$state/localenv.env"
# shellcheck disable=SC1091
. "$state/vendor.env"
printf 'registry %s, buildkitd %s, downloads %s\n' "$REGISTRY" "$BUILDKIT_HOST" "${JAR_URL%%/maven2*}" >&2

step "pushing the stand-in base as docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10 (mirrored at $REGISTRY)"
"$bin/standin" --product wso2is --version 5.8.0 --ports 4000,9763,9443 --created 1565855673150 --insecure \
	--ref "$REGISTRY/wso2is:5.8.0.1565855673150-alpine3.10" --ref "$REGISTRY/wso2is:5.8.0-alpine3.10"

step "writing the profile (examples/demo) and a keystore"
mkdir -p "$state/profile/conf" "$state/profile/security"
cp examples/demo/conf/deployment.toml "$state/profile/conf/"
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=is.acme.example" -days 30 \
	-keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null
openssl pkcs12 -export -name wso2carbon -in "$state/cert.pem" -inkey "$state/key.pem" \
	-passout pass:wso2carbon -out "$state/profile/security/wso2carbon.p12"
rm -f "$state/key.pem"
export JAR_URL JAR_SIG_URL JAR_SHA256 GPG_KEYRING GPG_FINGERPRINT
envsubst <examples/demo/wso2is-demo.yaml.in >"$state/profile/wso2is-demo.yaml"
# Flags that are the same for every command go in a config file (keys are flag names).
cat >"$state/wso2img.yaml" <<EOF
buildkit-host: $BUILDKIT_HOST
insecure-registry: [$REGISTRY]
mirror: [docker.wso2.com=$REGISTRY]
ca-file: $CA_FILE
registry: $REGISTRY/acme
cache-dir: $state/cache
EOF
cat "$state/profile/wso2is-demo.yaml" >&2

step "wso2img plan: resolve and pin the base, verify every input"
"$bin/wso2img" plan --config "$state/wso2img.yaml" "$state/profile/wso2is-demo.yaml"

step "wso2img build: one layer on the lazy base, pushed by digest, then tagged"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress plain "$state/profile/wso2is-demo.yaml"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress quiet --json "$state/profile/wso2is-demo.yaml" >"$state/build.json"

step "the result"
digest="$(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$state/build.json" | head -n 1)"
[ -n "$digest" ] || die "no digest in the build result: $(cat "$state/build.json")"
printf 'image   %s/acme/wso2is@%s\n' "$REGISTRY" "$digest"
printf 'tags    %s\n' "$(tr -d '\n ' <"$state/build.json" | sed -n 's/.*"tags":\[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ')"
printf '(the second build found the same image under its unique tag and pushed nothing)\n'
