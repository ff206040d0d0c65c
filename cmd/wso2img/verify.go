package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/scan"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// verifyOptions say whose signature an image must carry and what policy it must meet.
type verifyOptions struct {
	Key                      string
	Identity, IdentityRegexp string
	Issuer, IssuerRegexp     string
	CARoots, RekorURL        string
	IgnoreTlog, IgnoreSCT    bool
	SkipSignature            bool
	RequireAttestations      bool
	PolicyFile               string
	RequireVulnScan          bool
	MaxScanAge               string
	MaxScanSeverity          string
	asJSON                   bool
}

func (o *verifyOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Key, "key", "", "cosign public `KEY` the signature must verify with: a PEM file, env://VAR, or a KMS URI")
	f.StringVar(&o.Identity, "certificate-identity", "", "keyless: the signer's identity in its certificate, an email or a URI (https://github.com/ORG/REPO/.github/workflows/FILE@refs/heads/main)")
	f.StringVar(&o.IdentityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the signer's identity must match")
	f.StringVar(&o.Issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer of the identity (https://token.actions.githubusercontent.com for GitHub Actions)")
	f.StringVar(&o.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the OIDC issuer must match")
	f.StringVar(&o.CARoots, "ca-roots", "", "keyless: PEM `FILE` of the CA certificates of a private Fulcio (default: the Sigstore public-good roots, through TUF)")
	f.StringVar(&o.RekorURL, "rekor-url", sign.DefaultRekorURL, "Rekor transparency log `URL` for signatures that carry no inclusion proof")
	f.BoolVar(&o.IgnoreTlog, "insecure-ignore-tlog", false, "do not require the transparency log proof (for images signed with --tlog-upload=false; needed offline)")
	f.BoolVar(&o.IgnoreSCT, "insecure-ignore-sct", false, "keyless: do not require the certificate transparency proof (a private Fulcio without a CT log)")
	f.BoolVar(&o.SkipSignature, "insecure-skip-signature", false, "audit the image without checking its signature or attestations")
	f.BoolVar(&o.RequireAttestations, "require-attestations", true, "require the attestations the policy names (default: SLSA provenance and SPDX SBOM, which wso2img attaches when it signs)")
	f.StringVar(&o.PolicyFile, "policy", "", "YAML policy `FILE` that overrides the default audit (keys: allowRoot, ports, baseDigests, requiredLabels, allowSetuid, allowEnv, requireHealthcheck, attestations)")
	f.BoolVar(&o.RequireVulnScan, "require-vuln-scan", false, "require a vulnerability attestation (cosign's vuln/v1, which the gate of wso2img build attaches) signed by the same key or identity")
	f.StringVar(&o.MaxScanAge, "max-scan-age", "", "with --require-vuln-scan: the scan must have finished within this `AGE` (7d, 36h)")
	f.StringVar(&o.MaxScanSeverity, "max-scan-severity", "", "with --require-vuln-scan: refuse an image whose scan found anything at or above this `SEVERITY` (LOW, MEDIUM, HIGH, CRITICAL) — the base's findings included")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON document (an array, one report per image) on stdout")
}

// options turns the flags into verify.Options; mistakes are usage errors.
func (o *verifyOptions) options(reg registry.Options, log io.Writer) (verify.Options, error) {
	opts := verify.Options{
		Registry:      reg,
		SkipSignature: o.SkipSignature,
		Log:           log,
		Signature: verify.SignatureOptions{
			Key: o.Key, Identity: o.Identity, IdentityRegexp: o.IdentityRegexp, Issuer: o.Issuer, IssuerRegexp: o.IssuerRegexp,
			CARoots: o.CARoots, IgnoreTlog: o.IgnoreTlog, IgnoreSCT: o.IgnoreSCT, RekorURL: o.RekorURL,
		},
		Policy: verify.DefaultPolicy(),
	}
	if !o.SkipSignature {
		if err := opts.Signature.Validate(); err != nil {
			return opts, usageError{err}
		}
	}
	if o.PolicyFile != "" {
		p, err := verify.LoadPolicy(o.PolicyFile)
		if err != nil {
			return opts, usageError{err}
		}
		opts.Policy = p
	}
	if !o.RequireAttestations {
		opts.Policy.Attestations = nil
	}
	if o.MaxScanAge != "" || o.MaxScanSeverity != "" {
		o.RequireVulnScan = true
	}
	if o.RequireVulnScan {
		if o.SkipSignature {
			return opts, usageError{errors.New("--require-vuln-scan checks an attestation signed like the image: it cannot go with --insecure-skip-signature")}
		}
		vs := &verify.VulnScan{}
		if o.MaxScanAge != "" {
			age, err := verify.ParseAge(o.MaxScanAge)
			if err != nil {
				return opts, usageError{fmt.Errorf("--max-scan-age: %w", err)}
			}
			vs.MaxAge = age
		}
		if o.MaxScanSeverity != "" {
			sev, err := scan.ParseSeverity(o.MaxScanSeverity)
			if err != nil {
				return opts, usageError{fmt.Errorf("--max-scan-severity: %w", err)}
			}
			vs.MaxSeverity = sev
		}
		opts.VulnScan = vs
	}
	return opts, nil
}

func addVerify(root *cobra.Command) {
	var (
		reg registryOptions
		vo  verifyOptions
	)
	cmd := &cobra.Command{
		Use:   "verify IMAGE...",
		Short: "Check each image's signature, attestations and policy before running it",
		Long: `verify checks each image (by tag or digest) the way a deployment should before it
runs it:

  signature     a cosign signature by --key, or keyless by --certificate-identity and
                --certificate-oidc-issuer, whose signed payload names this very digest
                (CIS Docker Benchmark 4.5)
  attestations  the SLSA provenance and SPDX SBOM wso2img attaches, signed by the same
                key or identity (CIS 4.12); --require-attestations=false skips them
  user          a non-root USER, resolved through the image's /etc/passwd (CIS 4.1)
  base          the base digest label on the policy's allowlist, when it has one (CIS 4.2)
  ports         exposed ports within the allowed set, by default the ports of the stock
                WSO2 profiles (CIS 5.8, a runtime item)
  setuid        no setuid or setgid file in the final file system, every layer streamed
                (CIS 4.8)
  env-secrets, history-secrets
                no secret-looking variables or build-history entries (CIS 4.10)
  healthcheck   advice only: WSO2 images have none; Kubernetes probes are named (CIS 4.6)
  labels        org.opencontainers.image.base.name, .base.digest and io.wso2img.product
                (wso2img's rule)
  vuln-scan     with --require-vuln-scan: a vulnerability attestation signed the same
                way, no older than --max-scan-age, with nothing at or above
                --max-scan-severity

Every platform of a multi-platform image is audited. --policy FILE overrides the
defaults; unknown keys in it are errors. Advice never fails; any failed check makes
the exit code 4. It only reads from registries.`,
		Example: `  wso2img verify --key cosign.pub registry.acme.com/wso2/wso2is:5.8.0.1565855673150.1
  wso2img verify --certificate-identity https://github.com/acme/images/.github/workflows/build.yml@refs/heads/main \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com registry.acme.com/wso2/wso2is:5.8.0
  wso2img verify --key cosign.pub --insecure-ignore-tlog --insecure-registry 127.0.0.1:5000 --json 127.0.0.1:5000/wso2is:5.8.0`,
		Args: argsAtLeast(1, "image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro, err := reg.options()
			if err != nil {
				return err
			}
			opts, err := vo.options(ro, prefixed{cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			v, err := verify.New(cmd.Context(), opts)
			var kerr *sign.KeyError
			if errors.As(err, &kerr) {
				return usageError{err}
			} else if err != nil {
				return err
			}
			reports, err := v.VerifyAll(cmd.Context(), args)
			if vo.asJSON {
				if reports == nil {
					reports = []*verify.Report{}
				}
				if werr := writeJSON(cmd.OutOrStdout(), reports); werr != nil {
					return werr
				}
			} else if werr := verify.WriteText(cmd.OutOrStdout(), reports); werr != nil {
				return werr
			}
			return err
		},
	}
	reg.AddFlags(cmd)
	vo.AddFlags(cmd)
	root.AddCommand(cmd)
}
