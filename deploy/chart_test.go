package deploy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
)

const chartDir = "helm/signet"

// required is the least a user gives: where clients reach the instance and
// the Secret with the database URL.
func required() map[string]any {
	return map[string]any{
		"publicURL": "https://signet.example.com",
		"database":  map[string]any{"existingSecret": "signet-db"},
	}
}

// with returns required() with the dotted keys set.
func with(kv ...any) map[string]any {
	v := required()
	for i := 0; i < len(kv); i += 2 {
		m := v
		path := strings.Split(kv[i].(string), ".")
		for _, k := range path[:len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = kv[i+1]
	}
	return v
}

// manifests is one rendering, decoded strictly into the Kubernetes API
// types: an unknown or misspelt field is an error.
type manifests struct {
	configMap      *corev1.ConfigMap
	deployment     *appsv1.Deployment
	service        *corev1.Service // the API's
	metricsService *corev1.Service
	serviceAccount *corev1.ServiceAccount
	pvc            *corev1.PersistentVolumeClaim
	ingress        *networkingv1.Ingress
	networkPolicy  *networkingv1.NetworkPolicy
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *monitoringv1.ServiceMonitor
	notes          string
}

func render(values map[string]any) (*manifests, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "signet", Namespace: "sigstore", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	out := &manifests{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			out.notes = files[name]
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			targets := map[string]any{
				"v1/ConfigMap": &out.configMap, "apps/v1/Deployment": &out.deployment, "v1/Service": &out.service,
				"v1/ServiceAccount": &out.serviceAccount, "v1/PersistentVolumeClaim": &out.pvc,
				"networking.k8s.io/v1/Ingress": &out.ingress, "networking.k8s.io/v1/NetworkPolicy": &out.networkPolicy,
				"policy/v1/PodDisruptionBudget": &out.pdb, "monitoring.coreos.com/v1/ServiceMonitor": &out.serviceMonitor,
			}
			if head.Kind == "Service" && strings.Contains(doc, "app.kubernetes.io/component: metrics") {
				targets["v1/Service"] = &out.metricsService
			}
			target, ok := targets[head.APIVersion+"/"+head.Kind]
			if !ok {
				return nil, fmt.Errorf("%s: unexpected %s %s", name, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", name, head.Kind, err)
			}
		}
	}
	return out, nil
}

func mustRender(t *testing.T, values map[string]any) *manifests {
	t.Helper()
	m, err := render(values)
	if err != nil {
		t.Fatalf("rendering %v: %v", values, err)
	}
	if m.configMap == nil || m.deployment == nil || m.service == nil || m.metricsService == nil || m.serviceAccount == nil {
		t.Fatalf("rendering %v lacks the ConfigMap, Deployment, Services or ServiceAccount", values)
	}
	return m
}

// container is the Deployment's container (or init container) by name.
func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// serverConfig loads the rendered signet.yaml with Signet's own loader and
// validates it as `signet-server run` would, DATABASE_URL set as the
// Deployment sets it.
func serverConfig(t *testing.T, m *manifests) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(path, []byte(m.configMap.Data["signet.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://signet@db/signet"
		}
		return ""
	})
	if err != nil {
		t.Fatalf("signet.yaml does not load: %v\n%s", err, m.configMap.Data["signet.yaml"])
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("signet.yaml does not validate: %v\n%s", err, m.configMap.Data["signet.yaml"])
	}
	return cfg
}

// filesOf are the files a configuration reads: key files and their
// password files, PKCS#11 PIN files, chains, the TLS pair.
func filesOf(t *testing.T, cfg config.Config) []string {
	t.Helper()
	var files []string
	for _, uri := range []string{cfg.Log.Signer, cfg.CT.Signer, cfg.CA.Signer, cfg.Timestamp.Signer, cfg.TUF.RootSigner, cfg.TUF.TargetsSigner, cfg.TUF.SnapshotSigner, cfg.TUF.TimestampSigner} {
		switch {
		case uri == "":
		case strings.HasPrefix(uri, "file://"):
			path, _, _ := strings.Cut(strings.TrimPrefix(uri, "file://"), "?")
			src, err := keys.PasswordSourceOf(uri)
			if err != nil || src.File == "" {
				t.Fatalf("key %s: want its password from a file (%v)", uri, err)
			}
			files = append(files, path, src.File)
		case strings.HasPrefix(uri, "pkcs11:"):
			_, pin, ok := strings.Cut(uri, "pin-source=file:")
			if !ok {
				t.Fatalf("PKCS#11 key %s has no PIN file", uri)
			}
			files = append(files, pin)
		default:
			t.Fatalf("key URI %s", uri)
		}
	}
	files = append(files, cfg.CA.Chain, cfg.Timestamp.Chain)
	if cfg.TLS.Enabled() {
		files = append(files, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	return files
}

// mounted says which volume of c holds path, or "".
func mounted(c corev1.Container, path string) string {
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			return vm.Name
		}
	}
	return ""
}

func TestChartRenders(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, m *manifests, cfg config.Config)
	}{
		{"keys made in a volume", with("keys.organization", "Acme #1: Signing"), func(t *testing.T, m *manifests, cfg config.Config) {
			if m.pvc == nil || m.pvc.Annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("the keys' claim must be kept on uninstall: %+v", m.pvc)
			}
			initC := container(t, m.deployment, "init")
			if !slices.Contains(initC.Args, "--once") || !slices.Contains(initC.Args, "--password-file=/var/lib/signet/secrets/key-password") ||
				!slices.Contains(initC.Args, "--organization=Acme #1: Signing") {
				t.Errorf("init container runs %q", initC.Args)
			}
			if initC.Resources.Limits.Memory().IsZero() {
				t.Error("the init container has no resources (a ResourceQuota would refuse the pod)")
			}
			if cfg.TUF.RootSigner == "" || cfg.Hostname != "signet.example.com" || cfg.PublicURL != "https://signet.example.com" {
				t.Errorf("config: root signer %q, hostname %q, public_url %q", cfg.TUF.RootSigner, cfg.Hostname, cfg.PublicURL)
			}
			if m.ingress != nil || m.networkPolicy != nil || m.serviceMonitor != nil {
				t.Error("ingress, network policy and service monitor are off by default")
			}
			if m.pdb == nil || m.pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget %+v", m.pdb)
			}
		}},
		{"keys from a Secret", with("keys.source", "secret", "keys.existingSecret", "signet-keys", "keys.passwordSecret.name", "signet-key-password", "keys.tufRootSigner", false),
			func(t *testing.T, m *manifests, cfg config.Config) {
				if m.pvc != nil || len(m.deployment.Spec.Template.Spec.InitContainers) != 0 {
					t.Error("keys from a Secret need no claim and no init container")
				}
				if cfg.TUF.RootSigner != "" || !strings.HasSuffix(cfg.Log.Signer, "?password-file=/var/run/signet/key-password/password") {
					t.Errorf("root signer %q, log signer %q", cfg.TUF.RootSigner, cfg.Log.Signer)
				}
			}},
		{"three replicas", with("replicaCount", 3, "keys.source", "secret", "keys.existingSecret", "signet-keys", "keys.passwordSecret.name", "signet-key-password"),
			func(t *testing.T, m *manifests, cfg config.Config) {
				srv := container(t, m.deployment, "signet")
				env := map[string]corev1.EnvVar{}
				for _, e := range srv.Env {
					env[e.Name] = e
				}
				if e := env["POD_IP"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
					t.Errorf("POD_IP %+v", e)
				}
				if e := env["SIGNET_REPLICAS_ADVERTISE_URL"]; e.Value != "http://$(POD_IP):8080" {
					t.Errorf("SIGNET_REPLICAS_ADVERTISE_URL %+v", e)
				}
				// What the server makes of it, as Kubernetes expands it.
				cfg.Replicas.AdvertiseURL = "http://10.1.2.3:8080"
				if err := cfg.Validate(false); err != nil {
					t.Errorf("the configuration a replica runs with: %v", err)
				}
			}},
		{"keys in an HSM", with("keys.source", "pkcs11",
			"keys.pkcs11.token", "pkcs11:token=signet?module-path=/opt/hsm/libpkcs11.so",
			"keys.pkcs11.pinSecret.name", "signet-pin", "keys.pkcs11.chainsSecret", "signet-chains",
			"extraVolumes", []any{map[string]any{"name": "hsm", "hostPath": map[string]any{"path": "/opt/hsm"}}},
			"extraVolumeMounts", []any{map[string]any{"name": "hsm", "mountPath": "/opt/hsm", "readOnly": true}}),
			func(t *testing.T, m *manifests, cfg config.Config) {
				if want := "pkcs11:token=signet;object=signet-ca?module-path=/opt/hsm/libpkcs11.so&pin-source=file:/var/run/signet/pin/pin"; cfg.CA.Signer != want {
					t.Errorf("ca.signer %q, want %q", cfg.CA.Signer, want)
				}
				if mounted(container(t, m.deployment, "signet"), "/opt/hsm/libpkcs11.so") != "hsm" {
					t.Error("the PKCS#11 module is not mounted")
				}
			}},
		{"ingress, TLS, network policy, service monitor", with("ingress.enabled", true, "ingress.className", "nginx", "ingress.tlsSecretName", "signet-tls",
			"tls.secretName", "signet-server-tls", "networkPolicy.enabled", true, "metrics.serviceMonitor.enabled", true,
			"config", map[string]any{"ca": map[string]any{"issuers": []any{map[string]any{"url": "https://accounts.example.com", "type": "email"}}}, "http": map[string]any{"request_timeout_seconds": 10}}),
			func(t *testing.T, m *manifests, cfg config.Config) {
				if m.ingress == nil || m.ingress.Spec.Rules[0].Host != "signet.example.com" || m.ingress.Spec.TLS[0].SecretName != "signet-tls" || *m.ingress.Spec.IngressClassName != "nginx" {
					t.Errorf("ingress %+v", m.ingress)
				}
				if !cfg.TLS.Enabled() || container(t, m.deployment, "signet").ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Error("TLS in the server needs tls.* in the config and HTTPS probes")
				}
				if len(cfg.CA.Issuers) != 1 || cfg.CA.Issuers[0].URL != "https://accounts.example.com" || cfg.HTTP.RequestTimeoutSeconds != 10 || len(cfg.Log.EntryTypes) != 2 {
					t.Errorf("config values not merged over the chart's: issuers %+v, timeout %d, entry types %v", cfg.CA.Issuers, cfg.HTTP.RequestTimeoutSeconds, cfg.Log.EntryTypes)
				}
				if m.networkPolicy == nil || len(m.networkPolicy.Spec.Ingress) != 2 || m.networkPolicy.Spec.Ingress[1].Ports[0].Port.StrVal != "metrics" {
					t.Errorf("network policy %+v", m.networkPolicy)
				}
				if m.serviceMonitor == nil || m.serviceMonitor.Spec.Endpoints[0].Port != "metrics" {
					t.Errorf("service monitor %+v", m.serviceMonitor)
				}
				for k, v := range m.serviceMonitor.Spec.Selector.MatchLabels {
					if m.metricsService.Labels[k] != v || (k == "app.kubernetes.io/component" && m.service.Labels[k] == v) {
						t.Errorf("the service monitor's selector %v must pick the metrics Service only", m.serviceMonitor.Spec.Selector.MatchLabels)
					}
				}
				if p := m.service.Spec.Ports[0].AppProtocol; p == nil || *p != "https" {
					t.Error("with TLS in the server, the API Service must say appProtocol https")
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustRender(t, c.values)
			cfg := serverConfig(t, m)
			d := m.deployment
			if n := *d.Spec.Replicas; n == 1 && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || n > 1 && d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
				t.Errorf("replicas %d, strategy %s: want one pod never two at once, or replicas rolled", n, d.Spec.Strategy.Type)
			}
			srv := container(t, d, "signet")
			if !slices.Equal(srv.Args, []string{"run", "--config", "/etc/signet/signet.yaml"}) || mounted(srv, "/etc/signet/signet.yaml") != "config" {
				t.Errorf("server runs %q with mounts %+v", srv.Args, srv.VolumeMounts)
			}
			if env := srv.Env[0]; env.Name != "DATABASE_URL" || env.ValueFrom.SecretKeyRef.Name != "signet-db" || env.ValueFrom.SecretKeyRef.Key != "url" {
				t.Errorf("DATABASE_URL from %+v", env)
			}
			for _, p := range []*corev1.Probe{srv.StartupProbe, srv.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.StrVal != "http" {
					t.Errorf("probe %+v: want GET /healthz on http", p)
				}
			}
			// /healthz asks the database; liveness must not restart the
			// pod for a database outage.
			if p := srv.LivenessProbe; p == nil || p.HTTPGet != nil || p.TCPSocket == nil || p.TCPSocket.Port.StrVal != "http" {
				t.Errorf("liveness probe %+v: want a TCP check of the http port", p)
			}
			sc := d.Spec.Template.Spec.SecurityContext
			if !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || *sc.FSGroup != 65532 || !*srv.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("security context %+v %+v", sc, srv.SecurityContext)
			}
			// Every file the configuration reads is in a volume of the pod.
			volumes := map[string]bool{}
			for _, v := range d.Spec.Template.Spec.Volumes {
				volumes[v.Name] = true
			}
			for _, f := range filesOf(t, cfg) {
				if v := mounted(srv, f); !volumes[v] {
					t.Errorf("%s is read by the server but not mounted (mount %q)", f, v)
				}
			}
			// Metrics never on the API's Service (which may be a LoadBalancer).
			if len(m.service.Spec.Ports) != 1 || m.service.Spec.Ports[0].TargetPort.StrVal != "http" {
				t.Errorf("API service ports %+v", m.service.Spec.Ports)
			}
			if ms := m.metricsService; ms.Spec.Type != corev1.ServiceTypeClusterIP || len(ms.Spec.Ports) != 1 || ms.Spec.Ports[0].TargetPort.StrVal != "metrics" {
				t.Errorf("metrics service %+v", ms.Spec)
			}
			if !strings.Contains(m.notes, "cosign initialize --mirror https://signet.example.com/tuf") {
				t.Errorf("NOTES.txt:\n%s", m.notes)
			}
			c.check(t, m, cfg)
		})
	}
}

// Values that cannot work stop helm install with the reason.
func TestChartRefuses(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no public URL", map[string]any{"database": map[string]any{"existingSecret": "db"}}, "publicURL is required"},
		{"no database", map[string]any{"publicURL": "https://s.example.com"}, "database.existingSecret is required"},
		{"replicas with a key volume", with("replicaCount", 2), "keys.source secret or pkcs11"},
		{"replicas with TLS in the server", with("replicaCount", 2, "keys.source", "secret", "keys.existingSecret", "k", "keys.passwordSecret.name", "p",
			"publicURL", "https://signet.example.com", "tls.secretName", "tls"), "TLS terminated at the Ingress"},
		{"TLS in the server behind an http URL", with("publicURL", "http://signet.example.com", "tls.secretName", "tls"), "publicURL must start with https://"},
		{"unknown key source", with("keys.source", "vault"), `keys.source "vault": want volume, secret or pkcs11`},
		{"secret without password", with("keys.source", "secret", "keys.existingSecret", "k"), "keys.passwordSecret.name"},
		{"HSM without PIN", with("keys.source", "pkcs11", "keys.pkcs11.token", "pkcs11:token=t?module-path=/m.so", "keys.pkcs11.chainsSecret", "c"), "pinSecret.name"},
		{"HSM token naming an object", with("keys.source", "pkcs11", "keys.pkcs11.token", "pkcs11:token=t;object=x?module-path=/m.so",
			"keys.pkcs11.pinSecret.name", "p", "keys.pkcs11.chainsSecret", "c"), "without object="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := render(c.values); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// Helm's own linter passes the chart with the required values.
func TestChartLints(t *testing.T) {
	result := lint.RunAll(chartDir, required(), "sigstore")
	var msgs []string
	for _, m := range result.Messages {
		msgs = append(msgs, m.Error())
	}
	sort.Strings(msgs)
	if result.HighestSeverity >= support.WarningSev {
		t.Fatalf("helm lint:\n%s", strings.Join(msgs, "\n"))
	}
	t.Logf("helm lint: %d messages\n%s", len(msgs), strings.Join(msgs, "\n"))
}
