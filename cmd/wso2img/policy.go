package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/policy"
)

// policyOptions say which images an admission policy covers and whom it trusts.
type policyOptions struct {
	KeyFile                  string
	Identity, IdentityRegexp string
	Issuer, IssuerRegexp     string
	CARootsFile              string
	FulcioURL, RekorURL      string
	IgnoreTlog               bool
	Images                   []string
	Kind                     string
	RequireVulnScan          bool
	MaxScanAge               string
	Name                     string
}

func (o *policyOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.KeyFile, "key", "", "cosign public key `FILE` (PEM) the signatures must verify with; it is inlined into the policies")
	f.StringVar(&o.Identity, "certificate-identity", "", "keyless: the signer's identity in its Fulcio certificate, an email or a URI (https://github.com/ORG/REPO/.github/workflows/FILE@refs/heads/main; the CronJob's https://kubernetes.io/namespaces/NS/serviceaccounts/SA)")
	f.StringVar(&o.IdentityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the signer's identity must match")
	f.StringVar(&o.Issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer of the identity (https://token.actions.githubusercontent.com for GitHub Actions)")
	f.StringVar(&o.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the OIDC issuer must match")
	f.StringVar(&o.CARootsFile, "ca-roots", "", "keyless: PEM `FILE` of a private Fulcio's CA certificates, inlined into the policies (default: the Sigstore public-good roots)")
	f.StringVar(&o.FulcioURL, "fulcio-url", "", "keyless: `URL` of a private Fulcio, for policy-controller (Kyverno needs --ca-roots instead) (default \"https://fulcio.sigstore.dev\")")
	f.StringVar(&o.RekorURL, "rekor-url", "", "Rekor transparency log `URL` the signatures were uploaded to (default \"https://rekor.sigstore.dev\")")
	f.BoolVar(&o.IgnoreTlog, "insecure-ignore-tlog", false, "admit signatures without a transparency log entry (images built with --tlog-upload=false); keyless certificates then verify only while they are valid")
	f.StringArrayVar(&o.Images, "image", nil, "image `PATTERN` the policies cover besides the profiles' repositories, written as is: policy-controller globs (\"*\" stops at \"/\", \"**\" does not) and Kyverno wildcards (\"*\" matches anything); repeatable")
	f.StringVar(&o.Kind, "kind", "all", "which policies: all, policy-controller (Sigstore ClusterImagePolicy) or kyverno (Kyverno ClusterPolicy)")
	f.BoolVar(&o.RequireVulnScan, "require-vuln-scan", false, "also require a cosign vulnerability attestation ("+policy.PredicateVuln+") whose scan finished within --max-scan-age")
	f.StringVar(&o.MaxScanAge, "max-scan-age", "7d", "with --require-vuln-scan: the oldest scan admitted, in days (7d) or as a Go duration (36h)")
	f.StringVar(&o.Name, "name", policy.DefaultName, "`NAME` of the policies (policy-controller's two get -signature and -attestations after it)")
}

// options turns the flags into policy.Options; conflicts and unreadable files are usage
// errors.
func (o *policyOptions) options(cmd *cobra.Command) (policy.Options, error) {
	opts := policy.Options{
		Name:      o.Name,
		Images:    o.Images,
		Identity:  policy.Identity{Subject: o.Identity, SubjectRegExp: o.IdentityRegexp, Issuer: o.Issuer, IssuerRegExp: o.IssuerRegexp},
		FulcioURL: o.FulcioURL, RekorURL: o.RekorURL, IgnoreTlog: o.IgnoreTlog,
		RequireVulnScan: o.RequireVulnScan,
	}
	keyless := o.Identity != "" || o.IdentityRegexp != "" || o.Issuer != "" || o.IssuerRegexp != ""
	switch {
	case o.KeyFile != "" && keyless:
		return opts, usageError{errors.New("--key and --certificate-identity/--certificate-oidc-issuer exclude each other: a policy trusts a key or a keyless identity")}
	case o.KeyFile == "" && !keyless:
		return opts, usageError{errors.New("whom to trust: give --key cosign.pub, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")}
	case o.KeyFile != "" && (o.CARootsFile != "" || o.FulcioURL != ""):
		return opts, usageError{errors.New("--ca-roots and --fulcio-url apply to keyless signatures, not with --key")}
	}
	switch o.Kind {
	case "all":
	case string(policy.PolicyController), string(policy.Kyverno):
		opts.Engines = []policy.Engine{policy.Engine(o.Kind)}
	default:
		return opts, usageError{fmt.Errorf("--kind %q: want all, policy-controller or kyverno", o.Kind)}
	}
	if cmd.Flags().Changed("max-scan-age") && !o.RequireVulnScan {
		return opts, usageError{errors.New("--max-scan-age without --require-vuln-scan: add --require-vuln-scan")}
	}
	if o.RequireVulnScan {
		age, err := parseAge(o.MaxScanAge)
		if err != nil {
			return opts, usageError{fmt.Errorf("--max-scan-age: %w", err)}
		}
		opts.MaxScanAge = age
	}
	var err error
	if opts.PublicKey, err = readPEM("--key", o.KeyFile); err != nil {
		return opts, err
	}
	if opts.CARoots, err = readPEM("--ca-roots", o.CARootsFile); err != nil {
		return opts, err
	}
	return opts, nil
}

// parseAge reads "7d" (days) or a Go duration ("36h", "90m").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		// A time.Duration holds about 106751 days.
		if err != nil || n <= 0 || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("%q: want a positive number of days (7d) or a duration (36h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive number of days (7d) or a duration (36h)", s)
	}
	return d, nil
}

func readPEM(flag, file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: reading %s: %w", flag, file, err)}
	}
	return string(b), nil
}

func addPolicy(root *cobra.Command) {
	var (
		po       policyOptions
		registry string
	)
	cmd := &cobra.Command{
		Use:   "policy [PROFILE...]",
		Short: "Write Kubernetes admission policies that admit only images wso2img signed",
		Long: `policy writes admission policies, as YAML on stdout for kubectl apply, that let a
cluster run the images of the given profiles (every tag and digest of each profile's
target repository, under --registry when given) and the --image patterns only when
they carry:

  a cosign signature    by --key, or keyless by --certificate-identity[-regexp] and
                        --certificate-oidc-issuer[-regexp] (with a transparency log entry
                        unless --insecure-ignore-tlog)
  SLSA provenance v1    ` + policy.PredicateSLSAProvenance + `, which wso2img attaches
  an SPDX SBOM          ` + policy.PredicateSPDX + `, which wso2img attaches
  a recent scan         with --require-vuln-scan: ` + policy.PredicateVuln + `
                        whose scan finished within --max-scan-age

both signed by the same key or identity. For Sigstore's policy-controller it writes two
ClusterImagePolicies (NAME-signature, NAME-attestations: one authority checks either a
signature or attestations, and every matching policy must pass); the scan's age is a
Rego policy. For Kyverno it writes one ClusterPolicy with a verifyImages rule that also
replaces tags with the verified digests; the scan's age is a time_since condition.

Images outside the patterns are left alone: add a policy of your own to refuse them.`,
		Example: `  wso2img policy --key cosign.pub --registry registry.acme.com/wso2 profiles/*.yaml | kubectl apply -f -
  wso2img policy --kind kyverno --certificate-identity https://github.com/acme/images/.github/workflows/build.yml@refs/heads/main \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com --require-vuln-scan --max-scan-age 7d profiles/is.yaml
  wso2img policy --key cosign.pub --insecure-ignore-tlog --image '127.0.0.1:5000/**'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := po.options(cmd)
			if err != nil {
				return err
			}
			if len(args) == 0 && len(opts.Images) == 0 {
				return usageError{errors.New("which images: give profiles (their target repositories) or --image patterns")}
			}
			profs, err := loadProfiles(args)
			if err != nil {
				return err
			}
			for _, p := range profs {
				repo := p.Repository(registry)
				if repo == "" {
					return usageError{fmt.Errorf("profile %s has no target.repository: give --registry", p.Name)}
				}
				opts.Repositories = append(opts.Repositories, repo)
			}
			out, err := policy.Generate(opts)
			if err != nil {
				return usageError{err}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	po.AddFlags(cmd)
	cmd.Flags().StringVar(&registry, "registry", "", "the images were pushed under this `PREFIX` (build --registry): each profile's repository becomes PREFIX/<its last element>")
	root.AddCommand(cmd)
}
