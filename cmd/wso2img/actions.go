package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wso2img/wso2img/internal/ghactions"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/watch"
)

// When wso2img runs as a GitHub Actions step it writes the step's outputs and a job
// summary itself, so that workflows need no glue to read its results.

// buildToActions writes build's outputs: digest (of the first profile), digests and
// tags (one a line, with their repository), json, and a summary table.
func buildToActions(results []*publish.Result) error {
	env := ghactions.Load()
	if env.Output == "" && env.Summary == "" {
		return nil
	}
	var digests, refs []string
	var rows [][]string
	for _, r := range results {
		if r == nil {
			continue
		}
		digests = append(digests, r.Image+"@"+r.Digest)
		for _, t := range r.Tags {
			refs = append(refs, r.Image+":"+t)
		}
		status := "pushed"
		switch {
		case r.Skipped:
			status = "up to date"
		case !r.Pushed && r.Output == "":
			status = "already there"
		case r.Output != "":
			status = "written to " + r.Output
		}
		for _, st := range r.Stages {
			if st.Status == publish.Failed {
				status = st.Stage + " failed: pushed by digest, untagged"
				if st.Stage == "scan" {
					status = "refused by the vulnerability gate: pushed by digest, untagged"
				}
			}
		}
		signed := "no"
		if r.Signed {
			signed = "yes"
		}
		rows = append(rows, []string{r.Profile, "`" + r.Image + "@" + r.Digest + "`", strings.Join(r.Tags, "<br>"),
			"`" + r.Base.Ref + "`", signed, status, strings.Join(r.Reasons, "; ")})
	}
	js, err := json.Marshal(nonNil(results))
	if err != nil {
		return err
	}
	first := ""
	if len(digests) > 0 {
		first = digests[0][strings.LastIndex(digests[0], "@")+1:]
	}
	if err := env.SetOutputs(map[string]string{"digest": first, "digests": strings.Join(digests, "\n"), "tags": strings.Join(refs, "\n"), "json": string(js)}); err != nil {
		return err
	}
	summary := "### wso2img build\n\n" + ghactions.Table([]string{"profile", "image", "tags", "base", "signed", "result", "why"}, rows)
	if findings := findingRows(results); len(findings) > 0 {
		summary += "\n#### Vulnerability gate: findings that refused an image\n\n" +
			ghactions.Table([]string{"profile", "platform", "severity", "ID", "package", "installed", "fixed", "path", "from"}, findings)
	}
	return env.AddSummary(summary)
}

// findingRows lists every finding that refused an image, for the summary.
func findingRows(results []*publish.Result) [][]string {
	var rows [][]string
	for _, r := range results {
		for _, sr := range r.Scan {
			for _, f := range sr.Failed {
				rows = append(rows, []string{r.Profile, sr.Platform, f.Severity.String(), f.ID, f.Package, f.InstalledVersion, f.FixedVersion, "`" + f.Path + "`", string(f.Origin)})
			}
		}
	}
	return rows
}

// watchToActions writes watch's outputs: due (a JSON list of the due profiles' files,
// ready for a matrix), json, and a summary table.
func watchToActions(statuses []*watch.Status) error {
	env := ghactions.Load()
	if env.Output == "" && env.Summary == "" {
		return nil
	}
	due := []string{}
	var rows [][]string
	for _, st := range statuses {
		if st.Due {
			due = append(due, st.File)
		}
		rows = append(rows, []string{st.Profile, fmt.Sprint(st.Due), st.Tag, strings.Join(st.Reasons, "; ")})
	}
	dueJSON, _ := json.Marshal(due)
	js, err := json.Marshal(statuses)
	if err != nil {
		return err
	}
	if err := env.SetOutputs(map[string]string{"due": string(dueJSON), "json": string(js)}); err != nil {
		return err
	}
	return env.AddSummary(fmt.Sprintf("### wso2img watch: %d of %d due\n\n", len(due), len(statuses)) +
		ghactions.Table([]string{"profile", "due", "tag", "why"}, rows))
}

func nonNil(results []*publish.Result) []*publish.Result {
	out := []*publish.Result{}
	for _, r := range results {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
