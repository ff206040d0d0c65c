package deploy_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// createCerts runs create-certs.sh into a temporary folder.
func createCerts(t *testing.T, dir string, args ...string) {
	t.Helper()
	for _, tool := range []string{"bash", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("create-certs.sh needs %s: %v", tool, err)
		}
	}
	cmd := exec.Command("bash", append([]string{"create-certs.sh", "-o", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-certs.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// serve accepts TLS connections as buildkitd does with --tlscacert/--tlscert/--tlskey
// (cmd/buildkitd's serverCredentials: RequireAndVerifyClientCert against the CA file).
func serve(t *testing.T, caFile, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool(t, caFile),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				// The handshake's verdict reaches the client through its next read.
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects as buildctl or wso2img do: the server name is the address's host.
func dial(t *testing.T, addr, serverName, caFile, certFile, keyFile string) error {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool(t, caFile),
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		return fmt.Errorf("the server refused the client certificate: %w", err)
	}
	return nil
}

func pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	return p
}

// TestCertificatesServeEveryDaemonName makes the certificates for a 3-replica release
// and shakes hands, with the client certificate, under every daemon name the chart puts
// in the CronJob's --buildkit-host flags; then as the readiness probe does (the daemon's
// own certificate against 127.0.0.1); and checks what must fail does.
func TestCertificatesServeEveryDaemonName(t *testing.T) {
	dir := t.TempDir()
	createCerts(t, dir, "-f", fullname, "-n", namespace, "-c", "3")
	daemon := func(f string) string { return filepath.Join(dir, "daemon", f) }
	client := func(f string) string { return filepath.Join(dir, "client", f) }
	addr := serve(t, daemon("ca.pem"), daemon("cert.pem"), daemon("key.pem"))

	r := mustRender(t, values(t, "buildkitd: {replicas: 3}\n"+profilesConfigMap))
	args := onlyContainer(t, get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild").Spec.JobTemplate.Spec.Template.Spec.Containers).Args
	var hosts []string
	for _, a := range args {
		if h, ok := strings.CutPrefix(a, "--buildkit-host=tcp://"); ok {
			host, _, err := net.SplitHostPort(h)
			if err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, host)
		}
	}
	if len(hosts) != 3 {
		t.Fatalf("the CronJob names %d daemons, want 3", len(hosts))
	}
	// A fourth replica, scaled up later, is covered by the wildcard under the Service.
	hosts = append(hosts, daemonHost(3))
	for _, h := range hosts {
		if err := dial(t, addr, h, client("ca.pem"), client("cert.pem"), client("key.pem")); err != nil {
			t.Errorf("the rebuild job cannot reach %s: %v", h, err)
		}
	}
	if err := dial(t, addr, "127.0.0.1", daemon("ca.pem"), daemon("cert.pem"), daemon("key.pem")); err != nil {
		t.Errorf("the readiness probe's handshake fails: %v", err)
	}

	// Must fail: a name outside the headless Service; a client of another CA; the
	// client certificate presented as a server's.
	var hostErr x509.HostnameError
	if err := dial(t, addr, "buildkitd.other.svc.cluster.local", client("ca.pem"), client("cert.pem"), client("key.pem")); !errors.As(err, &hostErr) {
		t.Errorf("a foreign name: error %v, want a hostname mismatch", err)
	}
	other := t.TempDir()
	createCerts(t, other, "-f", fullname, "-n", namespace, "-c", "1")
	if err := dial(t, addr, hosts[0], client("ca.pem"), filepath.Join(other, "client", "cert.pem"), filepath.Join(other, "client", "key.pem")); err == nil {
		t.Error("the daemon accepted a client certificate of another CA")
	}
	clientAsServer := serve(t, client("ca.pem"), client("cert.pem"), client("key.pem"))
	if err := dial(t, clientAsServer, "127.0.0.1", daemon("ca.pem"), daemon("cert.pem"), daemon("key.pem")); err == nil {
		t.Error("the client certificate works as a server certificate")
	}
}

// TestCertificateRotationBundle follows deploy/README.md's rotation: new certificates
// from a new CA whose ca.pem also trusts the old CA, so that old clients and new daemons
// (and new clients and old daemons) keep working until every pod has the new Secrets.
func TestCertificateRotationBundle(t *testing.T) {
	oldDir, newDir := t.TempDir(), t.TempDir()
	createCerts(t, oldDir, "-f", fullname, "-n", namespace)
	createCerts(t, newDir, "-f", fullname, "-n", namespace, "-t", filepath.Join(oldDir, "ca.pem"))
	in := func(dir, who, f string) string { return filepath.Join(dir, who, f) }
	host := daemonHost(0)

	// An old daemon that got the new bundle only: the new client reaches it.
	oldDaemonNewBundle := serve(t, in(newDir, "daemon", "ca.pem"), in(oldDir, "daemon", "cert.pem"), in(oldDir, "daemon", "key.pem"))
	if err := dial(t, oldDaemonNewBundle, host, in(newDir, "client", "ca.pem"), in(newDir, "client", "cert.pem"), in(newDir, "client", "key.pem")); err != nil {
		t.Errorf("new client → old daemon with the bundle: %v", err)
	}
	// A new daemon: an old client holding the new bundle reaches it.
	newDaemon := serve(t, in(newDir, "daemon", "ca.pem"), in(newDir, "daemon", "cert.pem"), in(newDir, "daemon", "key.pem"))
	if err := dial(t, newDaemon, host, in(newDir, "client", "ca.pem"), in(oldDir, "client", "cert.pem"), in(oldDir, "client", "key.pem")); err != nil {
		t.Errorf("old client certificate → new daemon: %v", err)
	}
	// Without the bundle, the old client does not trust the new daemon: why the bundle
	// must reach the clients before the new daemon certificates do.
	if err := dial(t, newDaemon, host, in(oldDir, "client", "ca.pem"), in(oldDir, "client", "cert.pem"), in(oldDir, "client", "key.pem")); err == nil {
		t.Error("an old client without the bundle trusts the new CA")
	}
}

// TestCertificateSecretsMatchTheChart decodes the Secrets create-certs.sh writes and
// checks they carry the names and keys the chart mounts.
func TestCertificateSecretsMatchTheChart(t *testing.T) {
	dir := t.TempDir()
	createCerts(t, dir, "-f", fullname, "-n", namespace)
	data, err := os.ReadFile(filepath.Join(dir, fullname+"-certs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]*corev1.Secret{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj, _, err := strict.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("create-certs.sh wrote a Secret that does not decode: %v", err)
		}
		s := obj.(*corev1.Secret)
		secrets[s.Name] = s
	}
	r := mustRender(t, values(t, profilesConfigMap))
	sts := get[*appsv1.StatefulSet](t, r, "StatefulSet/"+fullname+"-buildkitd")
	cj := get[*batchv1.CronJob](t, r, "CronJob/"+fullname+"-rebuild")
	for _, mounted := range []struct {
		spec   corev1.PodSpec
		volume string
	}{{sts.Spec.Template.Spec, "certs"}, {cj.Spec.JobTemplate.Spec.Template.Spec, "buildkit-client"}} {
		name := volume(t, mounted.spec.Volumes, mounted.volume).Secret.SecretName
		s, ok := secrets[name]
		if !ok {
			t.Errorf("the chart mounts the Secret %s; create-certs.sh wrote %v", name, keysOf(secrets))
			continue
		}
		if s.Namespace != namespace {
			t.Errorf("Secret %s in namespace %q, want %s", name, s.Namespace, namespace)
		}
		for _, k := range []string{"ca.pem", "cert.pem", "key.pem"} {
			if len(s.Data[k]) == 0 {
				t.Errorf("Secret %s lacks %s", name, k)
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
