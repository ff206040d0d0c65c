package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/version"
	"github.com/wso2img/wso2img/sign"
)

// signOptions say whether and how built images are signed.
type signOptions struct {
	// Sign is "auto" (sign when a key, a token or an ambient OIDC token is there),
	// "true" or "false".
	Sign autoBool
	// Key is the cosign private key: a file, env://VAR or a KMS URI.
	Key string
	// TlogUpload uploads signatures to the transparency log (cosign's default).
	TlogUpload bool
	// Keyless signing: Fulcio, Rekor, the OIDC login, or a ready identity token.
	FulcioURL, RekorURL, OIDCIssuer, OIDCClientID, IdentityToken string
}

func (o *signOptions) AddFlags(cmd *cobra.Command) {
	o.Sign = "auto"
	f := cmd.Flags()
	f.Var(&o.Sign, "sign", "sign the image (cosign), then tag it: true, false, or auto = when --key or --identity-token is given, or an OIDC token is at hand (GitHub Actions with `id-token: write`, SIGSTORE_ID_TOKEN)")
	f.Lookup("sign").NoOptDefVal = "true"
	f.StringVar(&o.Key, "key", "", "cosign private `KEY`: a file (password from COSIGN_PASSWORD), env://VAR, or a KMS URI (hashivault://NAME; SCHEME://… through a sigstore-kms-SCHEME plugin); without it, signing is keyless (Fulcio + Rekor)")
	f.BoolVar(&o.TlogUpload, "tlog-upload", true, "upload signatures and attestations to the Rekor transparency log, as cosign does (the signature, public key or certificate, and image digest become public); --tlog-upload=false for private or offline registries (verify then needs --insecure-ignore-tlog)")
	f.StringVar(&o.FulcioURL, "fulcio-url", sign.DefaultFulcioURL, "Fulcio `URL` that certifies keyless signing keys")
	f.StringVar(&o.RekorURL, "rekor-url", sign.DefaultRekorURL, "Rekor transparency log `URL`")
	f.StringVar(&o.OIDCIssuer, "oidc-issuer", sign.DefaultOIDCIssuer, "OIDC issuer `URL` of the browser login for keyless signing (when no token is at hand and stdin is a terminal)")
	f.StringVar(&o.OIDCClientID, "oidc-client-id", sign.DefaultOIDCClientID, "OIDC client `ID` of that login")
	f.StringVar(&o.IdentityToken, "identity-token", "", "OIDC identity `TOKEN` for keyless signing, or a file holding one (default: SIGSTORE_ID_TOKEN, GitHub Actions' token)")
}

// signer returns the Signer that the options ask for, or nil when images are not
// signed. A key that cannot be loaded fails here, before anything is built.
func (o *signOptions) signer(ctx context.Context, reg registry.Options, log io.Writer) (*sign.Signer, error) {
	switch o.Sign {
	case "false":
		return nil, nil
	case "auto":
		if o.Key == "" && o.IdentityToken == "" && sign.AmbientProvider(ctx) == "" {
			return nil, nil
		}
	}
	// Decrypting a cosign key file (scrypt) needs 64 MiB at once: start it on a heap
	// with nothing left to collect, so the peak is that and little more.
	debug.FreeOSMemory()
	s, err := sign.New(ctx, sign.Options{
		Key:           o.Key,
		FulcioURL:     o.FulcioURL,
		RekorURL:      o.RekorURL,
		OIDCIssuer:    o.OIDCIssuer,
		OIDCClientID:  o.OIDCClientID,
		IdentityToken: o.IdentityToken,
		Interactive:   isTerminal(os.Stdin),
		TlogUpload:    o.TlogUpload,
		Registry:      reg,
		Log:           log,
		UserAgent:     version.UserAgent(),
	})
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	// Those 64 MiB are garbage once the key is loaded: hand them back now rather than
	// let the heap grow around them for the rest of the build.
	debug.FreeOSMemory()
	return s, nil
}

// isTerminal reports whether f is a terminal (not /dev/null, a pipe or a file).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// autoBool is a flag that is "auto" until set to true or false; a bare --flag is true.
type autoBool string

func (b *autoBool) String() string { return string(*b) }
func (b *autoBool) Type() string   { return "true|false|auto" }
func (b *autoBool) Set(s string) error {
	if s == "auto" {
		*b = "auto"
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true, false or auto", s)
	}
	*b = autoBool(strconv.FormatBool(v))
	return nil
}
