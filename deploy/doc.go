// Package deploy holds what runs wso2img at scale on Kubernetes: the Helm chart in
// helm/wso2img (a BuildKit StatefulSet behind a headless Service, with mTLS, and the
// nightly `wso2img build --if-changed` CronJob) and create-certs.sh, which makes the
// fleet's certificates. It has no Go API: its tests render the chart with the Helm SDK,
// decode every object strictly against client-go's scheme and check what the chart
// promises (probes, security contexts, the CronJob's command, mounts, network policy),
// and check that the certificates create-certs.sh makes pass a real mTLS handshake for
// every daemon name the chart gives the CronJob. Nothing here needs a cluster.
package deploy
