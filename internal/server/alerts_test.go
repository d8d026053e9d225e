package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/tlstest"
	"github.com/signet-dev/signet/trust/tuf"
)

// Every signet_* metric the server exports is documented (docs/metrics.md),
// and the alert rules shipped for Prometheus (deploy/prometheus/alerts.yaml;
// promtool checks and unit-tests them in make test) name only metrics this
// server exports: a renamed metric would otherwise leave an alert that
// never fires.
func TestMetricsAreDocumentedAndAlertsNameThem(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}

	// One of each thing that makes the labelled metrics appear: an append,
	// a certificate, a time-stamp; and TLS configured, for its expiry (the
	// test server still speaks plain HTTP: only the metrics are looked at).
	certFile, keyFile, _ := tlstest.ServerCert(t, t.TempDir(), "alerts")
	inst := newFixture(t).startDev(t, func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
		c.PublicURL = strings.Replace(c.PublicURL, "http://", "https://", 1)
	})
	ctx := context.Background()
	body, _, _ := newSigner(t).hashedRekord(t, []byte("alerted"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=alerts@example.com"), key); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("alerted"))
	if _, err := client.NewTSA(inst.http.URL+"/api/v1/timestamp").Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: d[:]}); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	expiry := map[string]time.Time{}
	for _, line := range strings.Split(string(inst.get("/metrics", http.StatusOK)), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
		if m := regexp.MustCompile(`^signet_tuf_expiry_timestamp_seconds\{role="([a-z]+)"\} (\S+)$`).FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			expiry[m[1]] = time.Unix(int64(v), 0)
		}
	}
	// A replica's own metrics (replicas.advertise_url), beside its Server's.
	_, replicaURL := newFixture(t).startReplica(t)
	resp, err := http.Get(replicaURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	replicaMetrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(replicaMetrics), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
	}
	if !exported["signet_replica_leading"] || !exported["signet_log_appends_total"] {
		t.Errorf("a leading replica's /metrics lacks its own or its Server's metrics:\n%s", replicaMetrics)
	}
	docs, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range exported {
		if strings.HasPrefix(name, "signet_") && !strings.Contains(string(docs), "| `"+name+"` |") {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	// The TUF expiry the alerts watch: each role's latest metadata, just
	// signed, a lifetime from now.
	for role, lifetime := range map[string]time.Duration{"root": tuf.RootLifetime, "targets": tuf.TargetsLifetime, "snapshot": tuf.SnapshotLifetime, "timestamp": tuf.TimestampLifetime} {
		if left := time.Until(expiry[role]); left > lifetime || left < lifetime-time.Hour {
			t.Errorf("TUF %s.json expires in %v by the metric, want about %v", role, left, lifetime)
		}
	}

	// The alerts' expressions and the Grafana dashboard's queries.
	var queries []promQuery
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			queries = append(queries, promQuery{"alert " + r.Alert, r.Expr})
		}
	}
	panels := dashboardQueries(t)
	queries = append(queries, panels...)
	names := regexp.MustCompile(`\bsignet_[a-z_]+`)
	checked := 0
	for _, q := range queries {
		for _, name := range names.FindAllString(q.expr, -1) {
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
					family = base
				}
			}
			// A labelled family appears only once it has a sample
			// (signet_log_catch_ups_total needs a failure): its row in
			// docs/metrics.md stands for it.
			if !exported[family] && !strings.Contains(string(docs), "| `"+family+"` |") {
				t.Errorf("%s names %s, which the server does not export (docs/metrics.md lists what it does)", q.where, name)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("only %d metric names found in the rules and the dashboard", checked)
	}
	promtoolChecksQueries(t, panels)
}

// promQuery is a PromQL expression and where it comes from.
type promQuery struct{ where, expr string }

// dashboardQueries are the PromQL queries of deploy/grafana/signet.json's
// panels, named by panel title.
func dashboardQueries(t *testing.T) []promQuery {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/signet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/signet.json: %v", err)
	}
	var out []promQuery
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, promQuery{"dashboard panel " + p.Title, tg.Expr})
		}
	}
	if len(out) < 20 {
		t.Fatalf("the dashboard has %d queries", len(out))
	}
	return out
}

// promtoolChecksQueries has Prometheus's own parser check the dashboard's
// queries: each becomes a recording rule (Grafana's variables replaced by
// what they stand for) for promtool check rules.
func promtoolChecksQueries(t *testing.T, queries []promQuery) {
	t.Helper()
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries {
		expr, _ := json.Marshal(grafana.Replace(q.expr))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("promtool", "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(queries)); !strings.Contains(string(out), want) {
		t.Fatalf("promtool: %s", out)
	}
}
