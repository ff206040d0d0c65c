package truststore

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultFormat is the trust store format a WSO2 product ships, which its stock
// deployment.toml (or its built-in default) names, and why. A profile may override it:
// every product reads both formats once deployment.toml's [truststore] type says
// which.
//
// What was checked, in WSO2's public sources (see the package comment):
//   - Identity Server: client-truststore.jks (JKS) up to 7.0.0; client-truststore.p12
//     (PKCS12) from 7.1.0 (product-is commit 2aafbb983, "Change default keystore type
//     to PKCS12", first released in v7.1.0; 7.2.0 and 7.3.0 keep it).
//   - API Manager (all-in-one, control plane, gateway, traffic manager): JKS up to
//     4.7.0, the newest release checked.
//   - Micro Integrator: JKS up to the 4.4.0 development line (December 2024); later
//     releases were not checked.
//
// An unknown product or version gets JKS, the format of every other WSO2 product.
func DefaultFormat(product, version string) (Format, string) {
	major, minor, ok := majorMinor(version)
	switch p := strings.ToLower(product); {
	case p == "wso2is" || p == "is" || p == "identity-server":
		switch {
		case !ok:
			return JKS, fmt.Sprintf("Identity Server %q: not a version; JKS, as up to 7.0", version)
		case major > 7 || major == 7 && minor >= 1:
			return PKCS12, fmt.Sprintf("Identity Server %s ships client-truststore.p12 (PKCS12) since 7.1.0", version)
		}
		return JKS, fmt.Sprintf("Identity Server %s ships client-truststore.jks (JKS); 7.1.0 and later use PKCS12", version)
	case strings.HasPrefix(p, "wso2am") || p == "am" || p == "apim" || p == "api-manager":
		return JKS, fmt.Sprintf("API Manager %s ships client-truststore.jks (JKS) (checked up to 4.7.0)", version)
	case p == "wso2mi" || p == "mi" || p == "micro-integrator" || p == "wso2ei":
		return JKS, fmt.Sprintf("Micro Integrator %s ships client-truststore.jks (JKS) (checked up to 4.4.0)", version)
	}
	return JKS, fmt.Sprintf("product %q is not one wso2img knows; JKS, the format of WSO2 products other than Identity Server 7.1+", product)
}

func majorMinor(v string) (int, int, bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}
