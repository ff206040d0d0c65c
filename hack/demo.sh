#!/usr/bin/env bash
# demo.sh is `make demo`: wso2img's main job end to end on this machine alone.
#
#  1. starts a CNCF distribution registry on loopback and a private buildkitd;
#  2. pushes a stand-in WSO2 Identity Server 5.8.0 base (busybox, wso2carbon 802:802,
#     the product home, WSO2_SERVER_HOME, ports 4000 9763 9443, an Alpine package
#     database with a vulnerable musl) under its official name
#     docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10 — mirrored to the local
#     registry, since the real one cannot be reached from here;
#  3. serves a JDBC-driver-like jar and its GPG signature, a Carbon app archive and two
#     log4j-core jars over local HTTPS;
#  4. plans and builds examples/demo (the jar, a deployment.toml, a keystore, the Carbon
#     app unpacked, a trust store of two CAs), pushes it by digest, signs it with a cosign
#     key made for the demo (signature, SLSA provenance and SPDX SBOM), tags it;
#  5. verifies it with `wso2img verify` (signature + policy audit), and shows
#     `wso2img verify` refusing the unsigned base — the end of the main job;
#  6. once the stock cosign CLI and Trivy are built (in the background since the demo
#     started: Trivy's first build takes about ten minutes on 2 cores), shows that the
#     stock `cosign verify` agrees;
#  7. the vulnerability gate, with the real Trivy and an offline database:
#     the profile with log4j-core 2.14.1 is refused (exit 5, nothing signed or tagged),
#     with 2.17.1 it passes and carries a signed vulnerability attestation that
#     `wso2img verify --require-vuln-scan` and `cosign verify-attestation --type vuln`
#     accept.
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
started=$SECONDS
command -v openssl >/dev/null || die "openssl is needed to make the demo keystore (apt-get install openssl)"

rm -rf "$state"
mkdir -p "$state"
# The password of the demo's cosign key pair, which demoserve makes.
export COSIGN_PASSWORD=demo
pids=()
# The stock cosign CLI and Trivy (the gate's scanner) build in the background while the
# main job runs, which needs neither: Trivy's first build is by far the longest of the tools.
bash "$root/hack/tools.sh" cosign-v3 trivy >"$state/tools-build.log" 2>&1 &
tools_build=$!
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
# -trimpath, as make build builds bin/wso2img: the same flags share its compiled packages.
go build -trimpath -o "$bin/" ./hack/localenv ./hack/standin ./hack/demoserve

# wait_for FILE PID NAME waits until FILE is written, failing if PID dies first.
wait_for() {
	for _ in $(seq 1 600); do
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
"$bin/standin" --product wso2is --version 5.8.0 --ports 4000,9763,9443 --created 1565855673150 --insecure --vulnerable-os \
	--ref "$REGISTRY/wso2is:5.8.0.1565855673150-alpine3.10" --ref "$REGISTRY/wso2is:5.8.0-alpine3.10"

step "writing the profile (examples/demo), a keystore and the trust store's CA certificates"
mkdir -p "$state/profile/conf" "$state/profile/security" "$state/profile/certs"
cp examples/demo/conf/deployment.toml "$state/profile/conf/"
cp "$TRUST_CA1" "$state/profile/certs/partner-ca.pem"
cp "$TRUST_CA2" "$state/profile/certs/corporate-ca.pem"
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=is.acme.example" -days 30 \
	-keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null
openssl pkcs12 -export -name wso2carbon -in "$state/cert.pem" -inkey "$state/key.pem" \
	-passout pass:wso2carbon -out "$state/profile/security/wso2carbon.p12"
rm -f "$state/key.pem"
export JAR_URL JAR_SIG_URL JAR_SHA256 GPG_KEYRING GPG_FINGERPRINT CAR_URL CAR_SHA256
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

printf 'signing key %s (made by demoserve with cosign'"'"'s library; a real pipeline keeps its key in a secret, or signs keyless)\n' "$COSIGN_KEY" >&2
sign=(--key "$COSIGN_KEY" --tlog-upload=false)
# The gate has its own part below, once Trivy is built.
nogate=(--scan=false)

step "wso2img build: one layer on the lazy base, pushed by digest, signed, then tagged"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress plain "${sign[@]}" "${nogate[@]}" "$state/profile/wso2is-demo.yaml"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress quiet --json "${sign[@]}" "${nogate[@]}" "$state/profile/wso2is-demo.yaml" >"$state/build.json"
digest="$(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$state/build.json" | head -n 1)"
[ -n "$digest" ] || die "no digest in the build result: $(cat "$state/build.json")"
image="$REGISTRY/acme/wso2is@$digest"
printf '(the second build found the same image under its unique tag and pushed nothing)\n' >&2

step "wso2img verify: the signature, the attestations and the image policy (CIS Docker Benchmark 4)"
"$bin/wso2img" verify --insecure-registry "$REGISTRY" --key "$COSIGN_PUB" --insecure-ignore-tlog "$image"

step "and wso2img verify refuses the unsigned stand-in base (exit 4)"
set +e
"$bin/wso2img" verify --insecure-registry "$REGISTRY" --key "$COSIGN_PUB" --insecure-ignore-tlog \
	"$REGISTRY/wso2is:5.8.0.1565855673150-alpine3.10" >"$state/base-verify.txt" 2>&1
code=$?
set -e
[ "$code" -eq 4 ] || die "verifying the unsigned base exited $code, not 4: $(cat "$state/base-verify.txt")"
grep -E 'FAIL' "$state/base-verify.txt" | head -n 5
printf '(exit %s, as expected)\n' "$code"

step "the result"
printf 'image   %s\n' "$image"
printf 'tags    %s\n' "$(tr -d '\n ' <"$state/build.json" | sed -n 's/.*"tags":\[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ')"
printf 'signed  %s (cosign signature, SLSA provenance, SPDX SBOM)\n' "$(grep -q '"signed": true' "$state/build.json" && echo yes || echo no)"
printf '(the main job took %ss once its tools were built; the stock cosign CLI and Trivy build on meanwhile)\n' "$((SECONDS - started))"

step "waiting for the stock cosign CLI and Trivy, built in the background since the demo started"
while kill -0 "$tools_build" 2>/dev/null; do
	printf '%s (%ss so far; Trivy'"'"'s first build is the longest of the tools)\n' \
		"$(grep -E '^tools: (building|built)' "$state/tools-build.log" | tail -n 1 | sed 's/^tools: //; s/;.*//')" "$((SECONDS - started))" >&2
	sleep 30 &
	wait $! || true
done
wait "$tools_build" || die "building the stock cosign CLI or trivy failed: $(tail -n 20 "$state/tools-build.log")"

step "the stock cosign CLI agrees (make test checks cosign v2 and v3)"
offline=(--insecure-ignore-tlog=true --allow-insecure-registry=true --allow-http-registry=true)
cosign="cosign-v3"
HOME="$state/$cosign-home" "$bin/$cosign" verify --key "$COSIGN_PUB" "${offline[@]}" "$image" >"$state/$cosign.out" 2>&1 ||
	die "$cosign verify rejected the signature: $(cat "$state/$cosign.out")"
HOME="$state/$cosign-home" "$bin/$cosign" verify-attestation --type slsaprovenance1 --key "$COSIGN_PUB" "${offline[@]}" "$image" >>"$state/$cosign.out" 2>&1 ||
	die "$cosign verify-attestation rejected the provenance: $(cat "$state/$cosign.out")"
printf '%s (%s): signature and SLSA provenance verified\n' "$cosign" "$("$bin/$cosign" version 2>/dev/null | sed -n 's/^GitVersion: *//p')"

step "the vulnerability gate: a profile that adds log4j-core, scanned by Trivy with an offline database"
gate=(--scan=true --trivy "$bin/trivy" --scan-db "$SCAN_DB" --registry "$REGISTRY/acme-gate" "${sign[@]}")
export LOG4J_URL="$LOG4J_BAD_URL" LOG4J_SHA256="$LOG4J_BAD_SHA256"
envsubst <examples/demo/wso2is-demo-gate.yaml.in >"$state/profile/wso2is-gate.yaml"
cat "$state/profile/wso2is-gate.yaml" >&2

step "log4j-core 2.14.1 (Log4Shell): the gate refuses the image (exit 5: pushed by digest, not signed, not tagged)"
set +e
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress quiet --json "${gate[@]}" "$state/profile/wso2is-gate.yaml" >"$state/gate-refused.json" 2>"$state/gate-refused.txt"
code=$?
set -e
[ "$code" -eq 5 ] || die "the vulnerable image: exit $code, not 5: $(cat "$state/gate-refused.txt")"
grep -E 'vulnerability gate refused|CVE-|scan \(failed\)' "$state/gate-refused.txt" >&2 || true
grep -q '"tags": \[\]' "$state/gate-refused.json" || die "the refused image got tags: $(cat "$state/gate-refused.json")"
printf '(exit %s, as expected; tags: none, signed: %s)\n' "$code" "$(grep -q '"signed": true' "$state/gate-refused.json" && echo yes || echo no)"

step "log4j-core 2.17.1: the gate passes; signed, tagged, with a vulnerability attestation"
export LOG4J_URL="$LOG4J_FIXED_URL" LOG4J_SHA256="$LOG4J_FIXED_SHA256"
envsubst <examples/demo/wso2is-demo-gate.yaml.in >"$state/profile/wso2is-gate.yaml"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress quiet "${gate[@]}" "$state/profile/wso2is-gate.yaml"
"$bin/wso2img" build --config "$state/wso2img.yaml" --progress quiet --json "${gate[@]}" "$state/profile/wso2is-gate.yaml" >"$state/gate.json"
gdigest="$(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$state/gate.json" | head -n 1)"
gimage="$REGISTRY/acme-gate/wso2is@$gdigest"

step "wso2img verify --require-vuln-scan --max-scan-age 1d, and the stock cosign verify-attestation --type vuln"
"$bin/wso2img" verify --insecure-registry "$REGISTRY" --key "$COSIGN_PUB" --insecure-ignore-tlog \
	--require-vuln-scan --max-scan-age 1d "$gimage" | grep -E 'PASSED|vulnerability scan|scanned'
HOME="$state/cosign-v3-home" "$bin/cosign-v3" verify-attestation --type vuln --key "$COSIGN_PUB" "${offline[@]}" "$gimage" >"$state/cosign-vuln.out" 2>&1 ||
	die "cosign verify-attestation --type vuln rejected it: $(cat "$state/cosign-vuln.out")"
printf 'cosign-v3: vulnerability attestation of %s verified\n' "$gdigest"
printf '\nthe whole demo took %ss\n' "$((SECONDS - started))"
