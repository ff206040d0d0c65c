#!/usr/bin/env bash
# create-certs.sh makes the mTLS certificates of the chart's BuildKit fleet with openssl,
# like BuildKit's examples/kubernetes/create-certs.sh (which uses mkcert):
#
#   DIR/ca.pem, DIR/ca-key.pem      the CA (keep ca-key.pem out of the cluster)
#   DIR/daemon/{ca,cert,key}.pem    the daemons' certificate: serverAuth for every pod
#                                   DNS name (plus a wildcard under the headless Service,
#                                   so scaling up needs no new certificate), and
#                                   clientAuth + 127.0.0.1 for the readiness probe
#   DIR/client/{ca,cert,key}.pem    the rebuild job's client certificate (clientAuth)
#   DIR/FULLNAME-certs.yaml         both Secrets, for kubectl apply
#
# ca.pem in both Secrets is a bundle: the CA, plus the CAs given with -t during a
# rotation (deploy/README.md, "Rotating the certificates").
set -o errexit -o nounset -o pipefail

usage() {
	cat <<EOF
Usage: $0 [-f FULLNAME] [-n NAMESPACE] [-c REPLICAS] [-d CLUSTER_DOMAIN] [-o DIR]
          [-k] [-t CA_FILE]... [-v DAYS]

  -f FULLNAME        the chart's fullname: the release name, plus "-wso2img" unless it
                     contains it (default: wso2img)
  -n NAMESPACE       the release's namespace (default: default)
  -c REPLICAS        buildkitd.replicas: one SAN per pod (default: 2)
  -d CLUSTER_DOMAIN  the cluster's DNS domain (default: cluster.local)
  -o DIR             output folder (default: ./.certs)
  -k                 keep the CA already in DIR (new leaf certificates only)
  -t CA_FILE         also trust this CA (PEM), for a rotation; repeatable
  -v DAYS            validity of the leaf certificates (default: 365; the CA: 3650)
EOF
	exit 2
}

FULLNAME=wso2img
NAMESPACE=default
REPLICAS=2
DOMAIN=cluster.local
DIR=./.certs
KEEP_CA=
TRUST=()
DAYS=365
while getopts "f:n:c:d:o:kt:v:h" opt; do
	case "$opt" in
	f) FULLNAME=$OPTARG ;;
	n) NAMESPACE=$OPTARG ;;
	c) REPLICAS=$OPTARG ;;
	d) DOMAIN=$OPTARG ;;
	o) DIR=$OPTARG ;;
	k) KEEP_CA=1 ;;
	t) TRUST+=("$OPTARG") ;;
	v) DAYS=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || usage
if ! [[ $REPLICAS =~ ^[1-9][0-9]*$ ]]; then
	echo "$0: -c REPLICAS must be a positive number, not '$REPLICAS'" >&2
	exit 2
fi
if ! command -v openssl >/dev/null; then
	echo "$0: openssl is needed" >&2
	exit 1
fi
for ca in "${TRUST[@]+"${TRUST[@]}"}"; do
	if ! openssl x509 -in "$ca" -noout 2>/dev/null; then
		echo "$0: -t $ca is not a PEM certificate" >&2
		exit 2
	fi
done

SVC="${FULLNAME}-buildkitd"
mkdir -p "$DIR/daemon" "$DIR/client"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -n $KEEP_CA ]]; then
	if [[ ! -f $DIR/ca.pem || ! -f $DIR/ca-key.pem ]]; then
		echo "$0: -k: no CA in $DIR (ca.pem, ca-key.pem)" >&2
		exit 2
	fi
else
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$DIR/ca-key.pem" -out "$DIR/ca.pem" -days 3650 -sha256 \
		-subj "/O=wso2img/CN=${FULLNAME} BuildKit CA $(date -u +%Y-%m-%d)" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# The daemons' names: each pod under the headless Service, in the three forms a resolver
# accepts, plus a wildcard for pods added later.
sans="DNS:localhost,IP:127.0.0.1"
for ((i = 0; i < REPLICAS; i++)); do
	pod="${SVC}-${i}.${SVC}"
	sans+=",DNS:${pod}.${NAMESPACE}.svc.${DOMAIN},DNS:${pod}.${NAMESPACE}.svc,DNS:${pod}.${NAMESPACE}"
done
sans+=",DNS:*.${SVC}.${NAMESPACE}.svc.${DOMAIN},DNS:*.${SVC}.${NAMESPACE}.svc"

issue() { # name cn extendedKeyUsage subjectAltName
	local name=$1 cn=$2 eku=$3 san=$4
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		echo "subjectKeyIdentifier=hash"
		echo "authorityKeyIdentifier=keyid"
		[[ -z $san ]] || echo "subjectAltName=$san"
	} >"$tmp/$name.ext"
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$DIR/$name/key.pem" -out "$tmp/$name.csr" -subj "/O=wso2img/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$tmp/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" \
		-CAcreateserial -CAserial "$tmp/ca.srl" -out "$DIR/$name/cert.pem" -days "$DAYS" -sha256 \
		-extfile "$tmp/$name.ext" 2>/dev/null
	cat "$DIR/ca.pem" "${TRUST[@]+"${TRUST[@]}"}" >"$DIR/$name/ca.pem"
	openssl verify -CAfile "$DIR/ca.pem" "$DIR/$name/cert.pem" >/dev/null
}
issue daemon "${SVC}" "serverAuth,clientAuth" "$sans"
issue client "${FULLNAME}-rebuild" "clientAuth" ""

b64() { openssl base64 -A <"$1"; }
secret() { # name folder
	cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $1
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: wso2img
type: Opaque
data:
  ca.pem: $(b64 "$DIR/$2/ca.pem")
  cert.pem: $(b64 "$DIR/$2/cert.pem")
  key.pem: $(b64 "$DIR/$2/key.pem")
EOF
}
{
	secret "${SVC}-tls" daemon
	echo "---"
	secret "${FULLNAME}-buildkit-client-tls" client
} >"$DIR/${FULLNAME}-certs.yaml"

echo "wrote $DIR/daemon, $DIR/client and $DIR/${FULLNAME}-certs.yaml (Secrets ${SVC}-tls, ${FULLNAME}-buildkit-client-tls in $NAMESPACE)"
echo "daemon certificate names: ${sans//,/ }"
