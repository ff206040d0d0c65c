package verify

import (
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

const (
	// Pass: the check holds.
	Pass Status = "pass"
	// Fail: the check does not hold; `wso2img verify` exits 4.
	Fail Status = "fail"
	// Advice: worth acting on, but not a failure.
	Advice Status = "advice"
	// Skip: the check did not apply (nothing to compare against, or turned off).
	Skip Status = "skip"
)

// Check IDs, stable for --json consumers and for policy files.
const (
	CheckSignature      = "signature"
	CheckAttestations   = "attestations"
	CheckUser           = "user"
	CheckBase           = "base"
	CheckPorts          = "ports"
	CheckSetuid         = "setuid"
	CheckEnvSecrets     = "env-secrets"
	CheckHistorySecrets = "history-secrets"
	CheckHealthcheck    = "healthcheck"
	CheckLabels         = "labels"
	CheckPlatforms      = "platforms"
	CheckVulnScan       = "vuln-scan"
)

// Check is one check of one image (or one platform of it), with why it came out so.
type Check struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Rule is the rule the check enforces: a CIS Docker Benchmark item, or wso2img's own.
	Rule     string `json:"rule"`
	Platform string `json:"platform,omitempty"`
	Status   Status `json:"status"`
	// Detail says why, in a sentence or two.
	Detail string `json:"detail"`
	// Findings list what was found, one line each (files, variables, history entries).
	Findings []string `json:"findings,omitempty"`
}

// Report is what verifying one image found.
type Report struct {
	// Image is the reference as given; Digest what it resolved to.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Platforms are the platforms audited ("linux/amd64").
	Platforms []string `json:"platforms"`
	Checks    []Check  `json:"checks"`
	// Passed is true when no check failed (advice does not fail).
	Passed bool `json:"passed"`
	// ChecksOff names the checks that were switched off for this run: a pass with any
	// of them off is not a full pass.
	ChecksOff []string `json:"checksOff,omitempty"`
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

// ViolationError says that an image failed verification: a bad or missing signature
// or attestation, or a policy violation. The CLI maps it to exit code 4.
type ViolationError struct {
	Image  string
	Failed []Check
}

func (e *ViolationError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		parts[i] = c.ID
		if c.Platform != "" {
			parts[i] += " (" + c.Platform + ")"
		}
	}
	return fmt.Sprintf("%s failed verification: %s", e.Image, strings.Join(parts, ", "))
}

// WriteText writes reports for people: per image, one line per check with its status,
// then why, and the findings indented.
func WriteText(out io.Writer, reports []*Report) error {
	w := &strings.Builder{}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		verdict := "PASSED"
		switch {
		case !r.Passed:
			verdict = "FAILED"
		case len(r.ChecksOff) > 0:
			verdict = "PASSED WITH CHECKS OFF"
		}
		fmt.Fprintf(w, "%s  %s\n", r.Image, verdict)
		for _, off := range r.ChecksOff {
			fmt.Fprintf(w, "  WARNING   not checked: %s\n", off)
		}
		if r.Digest != "" {
			fmt.Fprintf(w, "  digest    %s\n", r.Digest)
		}
		if len(r.Platforms) > 0 {
			fmt.Fprintf(w, "  platforms %s\n", strings.Join(r.Platforms, ", "))
		}
		for _, c := range r.Checks {
			title := c.Title
			if c.Platform != "" && len(r.Platforms) > 1 {
				title += " [" + c.Platform + "]"
			}
			fmt.Fprintf(w, "  %-6s  %-44s %s\n", strings.ToUpper(string(c.Status)), title, c.Rule)
			if c.Detail != "" {
				fmt.Fprintf(w, "          %s\n", c.Detail)
			}
			const maxFindings = 20
			for j, f := range c.Findings {
				if j == maxFindings {
					fmt.Fprintf(w, "            … and %d more (see --json)\n", len(c.Findings)-maxFindings)
					break
				}
				fmt.Fprintf(w, "            - %s\n", f)
			}
		}
	}
	_, err := io.WriteString(out, w.String())
	return err
}
