package sign

// KMS providers compiled into wso2img (see the package comment for why only this one).
// A provider registers its URI scheme with sigstore's kms package when imported; add a
// line here (and `go get` its module) to compile in another:
//
//	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"   // awskms://
//	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure" // azurekms://
//	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"   // gcpkms://
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault" // hashivault://KEY and openbao://KEY; VAULT_ADDR, VAULT_TOKEN
)
