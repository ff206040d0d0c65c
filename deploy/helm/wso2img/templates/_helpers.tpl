{{/* Names, labels and the few derived values every template shares. */}}

{{- define "wso2img.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's prefix. Kept to 40 characters: "-buildkitd-NN" follows it in pod names,
and pod DNS labels must stay within 63.
*/}}
{{- define "wso2img.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wso2img.buildkitd" -}}
{{- printf "%s-buildkitd" (include "wso2img.fullname" .) -}}
{{- end -}}

{{- define "wso2img.rebuild" -}}
{{- printf "%s-rebuild" (include "wso2img.fullname" .) -}}
{{- end -}}

{{- define "wso2img.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wso2img.rebuild" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* All labels of an object of one component (buildkitd or rebuild): its selector labels and the chart's. */}}
{{- define "wso2img.labels" -}}
{{ include "wso2img.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: wso2img
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component (buildkitd or rebuild): stable across upgrades. */}}
{{- define "wso2img.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wso2img.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wso2img.rootless" -}}
{{- if eq .Values.buildkitd.mode "rootless" -}}true{{- else if eq .Values.buildkitd.mode "privileged" -}}{{- else -}}
{{- fail (printf "buildkitd.mode must be rootless or privileged, not %q" .Values.buildkitd.mode) -}}
{{- end -}}
{{- end -}}

{{/* The BuildKit image: the chart's appVersion (+ -rootless) unless a tag or digest is set. */}}
{{- define "wso2img.buildkitImage" -}}
{{- $img := .Values.buildkitd.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else if $img.tag -}}
{{- printf "%s:%s" $img.repository $img.tag -}}
{{- else if include "wso2img.rootless" . -}}
{{- printf "%s:%s-rootless" $img.repository .Chart.AppVersion -}}
{{- else -}}
{{- printf "%s:%s" $img.repository .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "wso2img.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (required "rebuild.image.tag or rebuild.image.digest must be set" .tag) -}}
{{- end -}}
{{- end -}}

{{/* The git image: the BuildKit rootless image (git, ssh and sh) unless one is named. */}}
{{- define "wso2img.gitImage" -}}
{{- $g := .Values.rebuild.profiles.git.image -}}
{{- if $g.repository -}}
{{- printf "%s:%s" $g.repository (required "rebuild.profiles.git.image.tag must be set with its repository" $g.tag) -}}
{{- else -}}
{{- printf "%s:%s-rootless" .Values.buildkitd.image.repository .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "wso2img.daemonTLSSecret" -}}
{{- default (printf "%s-tls" (include "wso2img.buildkitd" .)) .Values.buildkitd.tls.secretName -}}
{{- end -}}

{{- define "wso2img.clientTLSSecret" -}}
{{- default (printf "%s-buildkit-client-tls" (include "wso2img.fullname" .)) .Values.rebuild.buildkitClient.secretName -}}
{{- end -}}

{{/* The stable DNS name of daemon i: <pod>.<headless service>.<namespace>.svc.<domain>. */}}
{{- define "wso2img.daemonHost" -}}
{{- $svc := include "wso2img.buildkitd" .root -}}
{{- printf "%s-%d.%s.%s.svc.%s" $svc (int .i) $svc .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/*
The ConfigMap key of a profile file: keys cannot hold "/", so folders become "__" and the
volume's items put each file back at its path.
*/}}
{{- define "wso2img.profileKey" -}}
{{- . | replace "/" "__" -}}
{{- end -}}

{{/*
"true" when the CronJob is rendered: rebuild.enabled, and profiles to build (ConfigMap
files, or a git repository). With the default values (no profiles) only the fleet is
installed, and NOTES.txt says how to add the job.
*/}}
{{- define "wso2img.rebuildOn" -}}
{{- $r := .Values.rebuild -}}
{{- if $r.enabled -}}
{{- if eq $r.profiles.source "configMap" -}}
{{- if $r.profiles.files -}}true{{- end -}}
{{- else if eq $r.profiles.source "git" -}}
{{- $_ := required "rebuild.profiles.git.repository must be set with rebuild.profiles.source=git" $r.profiles.git.repository -}}
{{- if not $r.profiles.build -}}
{{- fail "rebuild.profiles.build must list the profiles to build (paths in the checkout) with rebuild.profiles.source=git" -}}
{{- end -}}
true
{{- else -}}
{{- fail (printf "rebuild.profiles.source must be configMap or git, not %q" $r.profiles.source) -}}
{{- end -}}
{{- end -}}
{{- end -}}
