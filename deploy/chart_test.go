package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "helm/wso2img"
	release   = "nightly"
	namespace = "builds"
	// fullname: the release name plus the chart name, as _helpers.tpl makes it.
	fullname = "nightly-wso2img"
)

// kubeVersion is the oldest Kubernetes the chart supports (appArmorProfile in the
// securityContext is 1.30).
var kubeVersion = chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// strict decodes YAML into client-go's typed objects and fails on unknown or duplicate
// fields, as `kubectl apply --validate=strict` does.
var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// rendered is one rendering of the chart, its objects by kind and name.
type rendered struct {
	objects map[string]runtime.Object // "Kind/name"
	notes   string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart %s: %v", chartDir, err)
	}
	return c
}

// values parses a values document written in the test (YAML, like a -f file).
func values(t *testing.T, doc string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(doc))
	if err != nil {
		t.Fatalf("values %q: %v", doc, err)
	}
	return v
}

// render templates the chart as `helm template` does, and decodes every object strictly.
func render(t *testing.T, vals map[string]any) (*rendered, error) {
	t.Helper()
	c := loadChart(t)
	if !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, kubeVersion.Version) {
		t.Fatalf("the chart's kubeVersion %q excludes %s", c.Metadata.KubeVersion, kubeVersion.Version)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return nil, err
	}
	r := &rendered{objects: map[string]runtime.Object{}}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			r.notes = content
			continue
		case strings.HasSuffix(name, ".tpl"):
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, gvk, err := strict.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s does not decode strictly as a Kubernetes object: %v\n%s", name, err, doc)
			}
			meta, ok := obj.(interface{ GetName() string })
			if !ok {
				t.Fatalf("%s: a %s without metadata", name, gvk)
			}
			key := gvk.Kind + "/" + meta.GetName()
			if _, dup := r.objects[key]; dup {
				t.Fatalf("%s: %s rendered twice", name, key)
			}
			r.objects[key] = obj
		}
	}
	return r, nil
}

func mustRender(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	r, err := render(t, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

func get[T runtime.Object](t *testing.T, r *rendered, key string) T {
	t.Helper()
	obj, ok := r.objects[key]
	if !ok {
		t.Fatalf("no %s among the rendered objects %v", key, r.keys())
	}
	typed, ok := obj.(T)
	if !ok {
		t.Fatalf("%s is a %T", key, obj)
	}
	return typed
}

func (r *rendered) keys() []string {
	var ks []string
	for k := range r.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// A profile set used by the cases that render the CronJob.
const profilesConfigMap = `
rebuild:
  dockerConfigSecret: regcred
  signing:
    key: {secretName: cosign}
  profiles:
    files:
      is.yaml: "extends: wso2is-5.8.0\n"
      am.yml: "extends: wso2am-4.2.0\n"
      conf/deployment.toml: "[server]\n"
`

func TestChartLints(t *testing.T) {
	for name, doc := range map[string]string{
		"defaults":    "",
		"configMap":   profilesConfigMap,
		"privileged":  "buildkitd: {mode: privileged}\n" + profilesConfigMap,
		"git keyless": "rebuild: {signing: {mode: keyless}, profiles: {source: git, build: [a.yaml], git: {repository: https://git.acme.com/p.git}}}",
	} {
		t.Run(name, func(t *testing.T) {
			kv := kubeVersion
			linter := lint.AllWithKubeVersion(chartDir, values(t, doc), namespace, &kv)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestDefaultsRenderTheFleetOnly(t *testing.T) {
	r := mustRender(t, nil)
	want := []string{
		"NetworkPolicy/" + fullname + "-buildkitd",
		"Service/" + fullname + "-buildkitd",
		"ServiceAccount/" + fullname + "-rebuild",
		"StatefulSet/" + fullname + "-buildkitd",
	}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Errorf("default values render %v, want %v (no CronJob without profiles)", got, want)
	}
	if !strings.Contains(r.notes, "No rebuild CronJob") {
		t.Errorf("NOTES.txt does not say why there is no CronJob:\n%s", r.notes)
	}
	for i := range 2 {
		host := daemonHost(i)
		if !strings.Contains(r.notes, "tcp://"+host+":1234") {
			t.Errorf("NOTES.txt does not name daemon %d (%s):\n%s", i, host, r.notes)
		}
	}
}

func daemonHost(i int) string {
	return fmt.Sprintf("%s-buildkitd-%d.%s-buildkitd.%s.svc.cluster.local", fullname, i, fullname, namespace)
}

func TestStatefulSetRootless(t *testing.T) {
	r := mustRender(t, nil)
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	if sts.Spec.ServiceName != fullname+"-buildkitd" {
		t.Errorf("serviceName %q, want the headless Service %s-buildkitd", sts.Spec.ServiceName, fullname)
	}
	if *sts.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *sts.Spec.Replicas)
	}
	pod := sts.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the daemons' pods mount a service account token; they call no API")
	}
	c := onlyContainer(t, pod.Containers)
	if c.Image != "moby/buildkit:v0.34.2-rootless" {
		t.Errorf("image %q, want moby/buildkit:v0.34.2-rootless", c.Image)
	}
	wantArgs := []string{
		"--addr", "unix:///run/user/1000/buildkit/buildkitd.sock",
		"--addr", "tcp://0.0.0.0:1234",
		"--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/cert.pem", "--tlskey", "/certs/key.pem",
		"--oci-worker-no-process-sandbox",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("buildkitd args\n got %q\nwant %q", c.Args, wantArgs)
	}
	// Readiness through the mTLS listener, liveness through the socket.
	wantReady := []string{"buildctl", "--addr", "tcp://127.0.0.1:1234", "--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/cert.pem", "--tlskey", "/certs/key.pem", "debug", "workers"}
	if got := c.ReadinessProbe.Exec.Command; !slices.Equal(got, wantReady) {
		t.Errorf("readiness probe\n got %q\nwant %q", got, wantReady)
	}
	wantLive := []string{"buildctl", "--addr", "unix:///run/user/1000/buildkit/buildkitd.sock", "debug", "workers"}
	if got := c.LivenessProbe.Exec.Command; !slices.Equal(got, wantLive) {
		t.Errorf("liveness probe\n got %q\nwant %q", got, wantLive)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("rootless daemon is privileged")
	case sc.RunAsUser == nil || *sc.RunAsUser != 1000, sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("rootless daemon runs as %v (runAsNonRoot %v), want uid 1000, non-root", sc.RunAsUser, sc.RunAsNonRoot)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined:
		t.Errorf("seccomp %v, want Unconfined (rootlesskit's unshare and mount)", sc.SeccompProfile)
	case sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined:
		t.Errorf("apparmor %v, want Unconfined", sc.AppArmorProfile)
	}
	if psc := pod.SecurityContext; psc == nil || psc.FSGroup == nil || *psc.FSGroup != 1000 {
		t.Errorf("pod securityContext %v: fsGroup 1000 is needed for the cache volume and the 0440 certificates", psc)
	}
	mounts := mountPaths(c.VolumeMounts)
	if mounts["certs"] != "/certs" || mounts["cache"] != "/home/user/.local/share/buildkit" {
		t.Errorf("mounts %v, want certs at /certs and cache at BuildKit's rootless state folder", mounts)
	}
	certs := volume(t, pod.Volumes, "certs")
	if certs.Secret == nil || certs.Secret.SecretName != fullname+"-buildkitd-tls" || *certs.Secret.DefaultMode != 0o440 {
		t.Errorf("certs volume %+v, want Secret %s-buildkitd-tls mode 0440", certs.VolumeSource, fullname)
	}
	if slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "cache" }) {
		t.Error("with persistence the cache is a volumeClaimTemplate, not a pod volume")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if pvc.Name != "cache" || pvc.Spec.Resources.Requests.Storage().String() != "50Gi" || pvc.Spec.StorageClassName != nil {
		t.Errorf("volumeClaimTemplate %s: %v, class %v; want cache, 50Gi, the default class", pvc.Name, pvc.Spec.Resources.Requests, pvc.Spec.StorageClassName)
	}
	if c.Resources.Requests.Cpu().String() != "1" || c.Resources.Limits.Memory().String() != "8Gi" {
		t.Errorf("resources %v, want the defaults (1 CPU, 8Gi limit)", c.Resources)
	}
}

func TestStatefulSetPrivileged(t *testing.T) {
	r := mustRender(t, values(t, "buildkitd: {mode: privileged, readinessProbe: {tls: false}, persistence: {enabled: false}}"))
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	pod := sts.Spec.Template.Spec
	c := onlyContainer(t, pod.Containers)
	if c.Image != "moby/buildkit:v0.34.2" {
		t.Errorf("image %q, want moby/buildkit:v0.34.2", c.Image)
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.RunAsUser != nil {
		t.Errorf("privileged mode securityContext %+v, want privileged root", sc)
	}
	if slices.Contains(c.Args, "--oci-worker-no-process-sandbox") {
		t.Error("privileged daemons keep the process sandbox")
	}
	if !slices.Contains(c.Args, "unix:///run/buildkit/buildkitd.sock") {
		t.Errorf("args %q lack the root socket", c.Args)
	}
	wantReady := []string{"buildctl", "--addr", "unix:///run/buildkit/buildkitd.sock", "debug", "workers"}
	if got := c.ReadinessProbe.Exec.Command; !slices.Equal(got, wantReady) {
		t.Errorf("readiness probe without TLS\n got %q\nwant %q", got, wantReady)
	}
	if mountPaths(c.VolumeMounts)["cache"] != "/var/lib/buildkit" {
		t.Errorf("mounts %v, want the cache at /var/lib/buildkit", mountPaths(c.VolumeMounts))
	}
	if v := volume(t, pod.Volumes, "cache"); v.EmptyDir == nil {
		t.Errorf("without persistence the cache is %+v, want an emptyDir", v.VolumeSource)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 0 || sts.Spec.PersistentVolumeClaimRetentionPolicy != nil {
		t.Error("volumeClaimTemplates without persistence")
	}
}

func TestHeadlessService(t *testing.T) {
	r := mustRender(t, nil)
	svc := get[*corev1.Service](t, r, "Service/"+fullname+"-buildkitd")
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("clusterIP %q, want None (headless)", svc.Spec.ClusterIP)
	}
	if svc.Spec.PublishNotReadyAddresses {
		t.Error("the Service publishes daemons that are not ready")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 1234 {
		t.Errorf("ports %v, want 1234", svc.Spec.Ports)
	}
	if !selects(svc.Spec.Selector, sts.Spec.Template.Labels) {
		t.Errorf("the Service's selector %v does not select the daemons %v", svc.Spec.Selector, sts.Spec.Template.Labels)
	}
}

func TestCronJobKeySigningConfigMapProfiles(t *testing.T) {
	r := mustRender(t, values(t, profilesConfigMap))
	cj := get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild")
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	if *cj.Spec.SuccessfulJobsHistoryLimit != 3 || *cj.Spec.FailedJobsHistoryLimit != 5 {
		t.Errorf("history limits %d/%d, want 3/5", *cj.Spec.SuccessfulJobsHistoryLimit, *cj.Spec.FailedJobsHistoryLimit)
	}
	job := cj.Spec.JobTemplate.Spec
	if job.ActiveDeadlineSeconds == nil || *job.ActiveDeadlineSeconds != 14400 {
		t.Errorf("activeDeadlineSeconds %v, want 14400", job.ActiveDeadlineSeconds)
	}
	if job.PodFailurePolicy == nil || !slices.Equal(job.PodFailurePolicy.Rules[0].OnExitCodes.Values, []int32{2, 3, 5}) {
		t.Errorf("podFailurePolicy %+v, want FailJob on exit codes 2, 3, 5", job.PodFailurePolicy)
	}
	pod := job.Template.Spec
	c := onlyContainer(t, pod.Containers)
	wantArgs := []string{
		"build", "--if-changed", "--progress=plain",
		"--buildkit-host=tcp://" + daemonHost(0) + ":1234",
		"--buildkit-host=tcp://" + daemonHost(1) + ":1234",
		"--buildkit-ca=/etc/wso2img/buildkit/ca.pem",
		"--buildkit-cert=/etc/wso2img/buildkit/cert.pem",
		"--buildkit-key=/etc/wso2img/buildkit/key.pem",
		"--sign=true", "--key=/etc/wso2img/cosign/cosign.key",
		// Only the top-level profiles, sorted; conf/deployment.toml is an input.
		"/etc/wso2img/profiles/am.yml", "/etc/wso2img/profiles/is.yaml",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("wso2img args\n got %q\nwant %q", c.Args, wantArgs)
	}
	if !slices.Equal(c.Command, []string{"wso2img"}) || c.Image != "ghcr.io/wso2img/wso2img:latest" {
		t.Errorf("command %q image %q", c.Command, c.Image)
	}
	env := envOf(c.Env)
	if env["DOCKER_CONFIG"].Value != "/etc/wso2img/docker" {
		t.Errorf("DOCKER_CONFIG %+v", env["DOCKER_CONFIG"])
	}
	if ref := env["COSIGN_PASSWORD"].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "cosign" || ref.SecretKeyRef.Key != "cosign.password" {
		t.Errorf("COSIGN_PASSWORD %+v, want the Secret cosign, key cosign.password", env["COSIGN_PASSWORD"])
	}
	checkJobSecurity(t, pod, c)
	mounts := mountPaths(c.VolumeMounts)
	for name, path := range map[string]string{
		"profiles": "/etc/wso2img/profiles", "docker-config": "/etc/wso2img/docker", "cosign-key": "/etc/wso2img/cosign",
		"buildkit-client": "/etc/wso2img/buildkit", "tmp": "/tmp", "cache": "/var/cache/wso2img",
	} {
		if mounts[name] != path {
			t.Errorf("volume %s mounted at %q, want %s", name, mounts[name], path)
		}
	}
	if _, ok := mounts["sigstore-token"]; ok {
		t.Error("key signing mounts an identity token")
	}
	dc := volume(t, pod.Volumes, "docker-config").Secret
	if dc == nil || dc.SecretName != "regcred" || len(dc.Items) != 1 || dc.Items[0].Key != ".dockerconfigjson" || dc.Items[0].Path != "config.json" {
		t.Errorf("docker-config volume %+v, want regcred's .dockerconfigjson as config.json", dc)
	}
	key := volume(t, pod.Volumes, "cosign-key").Secret
	if key == nil || key.SecretName != "cosign" || key.Items[0].Key != "cosign.key" || key.Items[0].Path != "cosign.key" {
		t.Errorf("cosign-key volume %+v", key)
	}
	client := volume(t, pod.Volumes, "buildkit-client").Secret
	if client == nil || client.SecretName != fullname+"-buildkit-client-tls" {
		t.Errorf("buildkit-client volume %+v", client)
	}
	// The ConfigMap holds each file under a flat key; the volume puts it back at its path.
	cm := get[*corev1.ConfigMap](t, r, "ConfigMap/"+fullname+"-rebuild-profiles")
	if cm.Data["conf__deployment.toml"] != "[server]\n" || cm.Data["is.yaml"] != "extends: wso2is-5.8.0\n" {
		t.Errorf("profiles ConfigMap %v", cm.Data)
	}
	items := volume(t, pod.Volumes, "profiles").ConfigMap.Items
	if !slices.ContainsFunc(items, func(k corev1.KeyToPath) bool {
		return k.Key == "conf__deployment.toml" && k.Path == "conf/deployment.toml"
	}) {
		t.Errorf("profiles volume items %v lack conf/deployment.toml", items)
	}
	if len(pod.InitContainers) != 0 {
		t.Error("configMap profiles need no git checkout")
	}
	if pod.ServiceAccountName != fullname+"-rebuild" || *pod.AutomountServiceAccountToken {
		t.Errorf("serviceAccount %q automount %v", pod.ServiceAccountName, *pod.AutomountServiceAccountToken)
	}
	sa := get[*corev1.ServiceAccount](t, r, "ServiceAccount/"+fullname+"-rebuild")
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount automounts its token")
	}
	for k := range r.objects {
		if strings.HasPrefix(k, "Role") || strings.HasPrefix(k, "ClusterRole") {
			t.Errorf("%s rendered: the job calls no API and needs no RBAC", k)
		}
	}
}

// checkJobSecurity holds the rebuild pod to the restricted Pod Security Standard.
func checkJobSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || *psc.RunAsUser == 0 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want non-root with RuntimeDefault seccomp", psc)
	}
	for _, c := range append(slices.Clone(pod.InitContainers), c) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s securityContext %+v: want no escalation, read-only root, all capabilities dropped", c.Name, sc)
		}
	}
	if restart := pod.RestartPolicy; restart != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never (podFailurePolicy needs it)", restart)
	}
}

func TestCronJobKeylessGitFiveReplicas(t *testing.T) {
	r := mustRender(t, values(t, `
buildkitd:
  replicas: 5
  persistence: {size: 200Gi, storageClass: fast-ssd}
  resources:
    requests: {cpu: "4", memory: 8Gi}
    limits: {cpu: "8", memory: 16Gi}
clusterDomain: corp.local
rebuild:
  schedule: "0 3 * * 1-5"
  timeZone: Europe/Berlin
  registry: registry.acme.com/wso2
  signing:
    mode: keyless
    rekorURL: https://rekor.acme.com
    tlogUpload: false
  profiles:
    source: git
    build: [is.yaml, am/apim.yaml]
    git:
      repository: https://git.acme.com/platform/wso2-profiles.git
      ref: v2026.11.3
      path: profiles/
      credentialsSecret: git-token
`))
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	if *sts.Spec.Replicas != 5 {
		t.Errorf("replicas %d", *sts.Spec.Replicas)
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if pvc.Spec.Resources.Requests.Storage().String() != "200Gi" || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast-ssd" {
		t.Errorf("volumeClaimTemplate %v class %v, want 200Gi on fast-ssd", pvc.Spec.Resources.Requests, pvc.Spec.StorageClassName)
	}
	bk := onlyContainer(t, sts.Spec.Template.Spec.Containers)
	if bk.Resources.Requests.Cpu().String() != "4" || bk.Resources.Limits.Memory().String() != "16Gi" {
		t.Errorf("custom resources not applied: %v", bk.Resources)
	}

	cj := get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild")
	if cj.Spec.Schedule != "0 3 * * 1-5" || cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != "Europe/Berlin" {
		t.Errorf("schedule %q tz %v", cj.Spec.Schedule, cj.Spec.TimeZone)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := onlyContainer(t, pod.Containers)
	var hosts []string
	for _, a := range c.Args {
		if h, ok := strings.CutPrefix(a, "--buildkit-host="); ok {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) != 5 {
		t.Fatalf("%d --buildkit-host flags, want one per replica (5): %q", len(hosts), c.Args)
	}
	for i, h := range hosts {
		want := fmt.Sprintf("tcp://%s-buildkitd-%d.%s-buildkitd.%s.svc.corp.local:1234", fullname, i, fullname, namespace)
		if h != want {
			t.Errorf("daemon %d: %s, want %s", i, h, want)
		}
	}
	for _, want := range []string{
		"--identity-token=/var/run/sigstore/token", "--rekor-url=https://rekor.acme.com", "--tlog-upload=false",
		"--registry=registry.acme.com/wso2", "--sign=true",
		"/workspace/profiles/profiles/is.yaml", "/workspace/profiles/profiles/am/apim.yaml",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %s", c.Args, want)
		}
	}
	if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--key") }) {
		t.Error("keyless signing passes --key")
	}
	if _, ok := envOf(c.Env)["COSIGN_PASSWORD"]; ok {
		t.Error("keyless signing sets COSIGN_PASSWORD")
	}
	if _, ok := envOf(c.Env)["DOCKER_CONFIG"]; ok {
		t.Error("DOCKER_CONFIG set without a docker config Secret")
	}
	mounts := mountPaths(c.VolumeMounts)
	if mounts["sigstore-token"] != "/var/run/sigstore" || mounts["workspace"] != "/workspace" {
		t.Errorf("mounts %v, want the token at /var/run/sigstore and the checkout at /workspace", mounts)
	}
	proj := volume(t, pod.Volumes, "sigstore-token").Projected
	if proj == nil || len(proj.Sources) != 1 || proj.Sources[0].ServiceAccountToken == nil {
		t.Fatalf("sigstore-token volume %+v, want one projected ServiceAccount token", proj)
	}
	if tok := proj.Sources[0].ServiceAccountToken; tok.Audience != "sigstore" || tok.Path != "token" || *tok.ExpirationSeconds != 3600 {
		t.Errorf("projected token %+v, want audience sigstore at token, 3600 s", tok)
	}
	if *pod.AutomountServiceAccountToken {
		t.Error("keyless mode mounts the API token too")
	}
	checkJobSecurity(t, pod, c)

	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d initContainers, want the git checkout", len(pod.InitContainers))
	}
	git := pod.InitContainers[0]
	if git.Image != "moby/buildkit:v0.34.2-rootless" {
		t.Errorf("git image %q, want the BuildKit rootless image", git.Image)
	}
	genv := envOf(git.Env)
	if genv["GIT_REPOSITORY"].Value != "https://git.acme.com/platform/wso2-profiles.git" || genv["GIT_REF"].Value != "v2026.11.3" {
		t.Errorf("git env %v", genv)
	}
	for _, k := range []string{"username", "password"} {
		name := "GIT_" + strings.ToUpper(k)
		if ref := genv[name].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "git-token" || ref.SecretKeyRef.Key != k {
			t.Errorf("%s %+v, want key %s of the Secret git-token", name, genv[name], k)
		}
	}
	script := strings.Join(git.Args, "\n")
	for _, want := range []string{`git fetch -q --depth 1 origin "$GIT_REF"`, "git checkout -q --detach FETCH_HEAD", "credential.helper"} {
		if !strings.Contains(script, want) {
			t.Errorf("git script lacks %q:\n%s", want, script)
		}
	}
	if mountPaths(git.VolumeMounts)["workspace"] != "/workspace" {
		t.Error("the checkout is not written to the shared workspace")
	}
	if _, ok := r.objects["ConfigMap/"+fullname+"-rebuild-profiles"]; ok {
		t.Error("git profiles render a profiles ConfigMap")
	}
}

func TestGitOverSSH(t *testing.T) {
	r := mustRender(t, values(t, `
rebuild:
  signing: {mode: none}
  profiles:
    source: git
    build: [is.yaml]
    git: {repository: "git@github.com:acme/profiles.git", credentialsSecret: deploy-key}
`))
	pod := get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild").Spec.JobTemplate.Spec.Template.Spec
	git := pod.InitContainers[0]
	env := envOf(git.Env)
	if !strings.Contains(env["GIT_SSH_COMMAND"].Value, "StrictHostKeyChecking=yes") {
		t.Errorf("GIT_SSH_COMMAND %q does not check the host key", env["GIT_SSH_COMMAND"].Value)
	}
	if _, ok := env["GIT_PASSWORD"]; ok {
		t.Error("ssh checkout reads a password")
	}
	if mountPaths(git.VolumeMounts)["git-credentials"] != "/etc/wso2img/git" {
		t.Errorf("git mounts %v", mountPaths(git.VolumeMounts))
	}
	c := onlyContainer(t, pod.Containers)
	if !slices.Contains(c.Args, "--sign=false") {
		t.Errorf("signing none: args %q lack --sign=false", c.Args)
	}
	if !strings.Contains(r.notes, "WARNING: signing is off") {
		t.Errorf("NOTES.txt does not warn about unsigned images:\n%s", r.notes)
	}
}

func TestNetworkPolicy(t *testing.T) {
	r := mustRender(t, values(t, profilesConfigMap))
	np := get[*networkingv1.NetworkPolicy](t, r, "NetworkPolicy/"+fullname+"-buildkitd")
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	cj := get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild")
	if !selects(np.Spec.PodSelector.MatchLabels, sts.Spec.Template.Labels) {
		t.Errorf("the policy's podSelector %v does not select the daemons", np.Spec.PodSelector.MatchLabels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 {
		t.Fatalf("ingress %+v, want one rule from one peer", np.Spec.Ingress)
	}
	in := np.Spec.Ingress[0]
	from := in.From[0].PodSelector.MatchLabels
	if !selects(from, cj.Spec.JobTemplate.Spec.Template.Labels) {
		t.Errorf("ingress peer %v does not select the rebuild pods %v", from, cj.Spec.JobTemplate.Spec.Template.Labels)
	}
	if selects(from, sts.Spec.Template.Labels) {
		t.Error("ingress peer also selects the daemons: they must not reach each other")
	}
	if len(in.Ports) != 1 || in.Ports[0].Port.IntValue() != 1234 {
		t.Errorf("ingress ports %v, want 1234 only", in.Ports)
	}
	var egressPorts []int
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			egressPorts = append(egressPorts, p.Port.IntValue())
		}
	}
	if !slices.Equal(egressPorts, []int{53, 53, 443}) {
		t.Errorf("egress ports %v, want DNS and HTTPS", egressPorts)
	}
	r = mustRender(t, values(t, "networkPolicy: {enabled: false}"))
	if _, ok := r.objects["NetworkPolicy/"+fullname+"-buildkitd"]; ok {
		t.Error("networkPolicy.enabled=false still renders it")
	}
}

func TestChartRejectsMistakes(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		// values.schema.json: unknown keys, enums and types.
		{"typo", "buildkitd: {replica: 3}", "additional properties 'replica' not allowed"},
		{"mode", "buildkitd: {mode: rootful}", "/buildkitd/mode"},
		{"source", "rebuild: {profiles: {source: s3}}", "/rebuild/profiles/source"},
		{"replicas type", "buildkitd: {replicas: three}", "/buildkitd/replicas"},
		{"no replicas", "buildkitd: {replicas: 0}", "/buildkitd/replicas"},
		{"digest", "rebuild: {image: {digest: latest}}", "/rebuild/image/digest"},
		// The templates: what a schema cannot say.
		{"git without repository", "rebuild: {profiles: {source: git, build: [a.yaml]}}", "rebuild.profiles.git.repository must be set"},
		{"git without build", "rebuild: {profiles: {source: git, git: {repository: https://x/y.git}}}", "rebuild.profiles.build must list the profiles"},
		{"key without Secret", "rebuild: {profiles: {files: {a.yaml: x}}}", "rebuild.signing.key.secretName must name the Secret"},
		{"signing mode", "rebuild: {signing: {mode: kms}, profiles: {files: {a.yaml: x}}}", "/rebuild/signing/mode"},
		{"no profile file", "rebuild: {signing: {mode: none}, profiles: {files: {conf/a.toml: x}}}", "holds no top-level *.yaml file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, values(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rendering with %s: error %v, want one saying %q", tc.values, err, tc.want)
			}
		})
	}
}

// TestBuildKitVersionMatchesGoMod holds the daemons' version to the client's: the chart's
// appVersion (and so the default image) is the github.com/moby/buildkit version go.mod
// requires.
func TestBuildKitVersionMatchesGoMod(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatalf("parsing go.mod: %v", err)
	}
	var want string
	for _, r := range mf.Require {
		if r.Mod.Path == "github.com/moby/buildkit" {
			want = r.Mod.Version
		}
	}
	if want == "" {
		t.Fatal("go.mod does not require github.com/moby/buildkit")
	}
	c := loadChart(t)
	if c.Metadata.AppVersion != want {
		t.Errorf("Chart.yaml appVersion %q, go.mod requires github.com/moby/buildkit %s", c.Metadata.AppVersion, want)
	}
	var vals struct {
		Buildkitd struct {
			Image struct{ Tag string } `json:"image"`
		} `json:"buildkitd"`
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		t.Fatal(err)
	}
	if vals.Buildkitd.Image.Tag != "" && !strings.HasPrefix(vals.Buildkitd.Image.Tag, want) {
		t.Errorf("values.yaml pins buildkitd.image.tag %q, not BuildKit %s", vals.Buildkitd.Image.Tag, want)
	}
	for mode, image := range map[string]string{"rootless": "moby/buildkit:" + want + "-rootless", "privileged": "moby/buildkit:" + want} {
		r := mustRender(t, values(t, "buildkitd: {mode: "+mode+"}"))
		c := onlyContainer(t, get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd").Spec.Template.Spec.Containers)
		if c.Image != image {
			t.Errorf("%s image %q, want %s", mode, c.Image, image)
		}
	}
}

func onlyContainer(t *testing.T, cs []corev1.Container) corev1.Container {
	t.Helper()
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0]
}

func mountPaths(ms []corev1.VolumeMount) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.MountPath
	}
	return out
}

func envOf(env []corev1.EnvVar) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range env {
		out[e.Name] = e
	}
	return out
}

func volume(t *testing.T, vs []corev1.Volume, name string) corev1.Volume {
	t.Helper()
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

// selects reports whether a label selector's matchLabels select labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
