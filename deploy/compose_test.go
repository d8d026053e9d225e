package deploy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/servertest"
)

// volumePath is where the compose file mounts the keys volume; the test
// puts it in a directory of its own.
const volumePath = "/var/lib/signet"

// loadCompose loads docker-compose.yml with the Compose specification's own
// loader (schema validation, interpolation) and an empty environment, as
// `docker compose up` alone would see it.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithWorkingDirectory(".."), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return project
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// docker compose up alone gives a complete instance: the file is valid, the
// order is database and keys before the server, every variable the server's
// configuration needs is set and agrees with the database service, and the
// init service's exact command followed by the server's exact command, on
// the configuration file the compose file mounts, start a server with the
// log, CA + CT, TSA and TUF that answers the compose healthcheck.
func TestComposeStartsACompleteInstance(t *testing.T) {
	project := loadCompose(t)
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range project.Services {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, []string{"init", "postgres", "signet"}) {
		t.Fatalf("services %v", got)
	}
	pg, initSvc, srv := project.Services["postgres"], project.Services["init"], project.Services["signet"]

	if srv.DependsOn["postgres"].Condition != types.ServiceConditionHealthy || srv.DependsOn["init"].Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("signet depends on %+v, want postgres healthy and init completed", srv.DependsOn)
	}
	if pg.HealthCheck == nil || srv.HealthCheck == nil {
		t.Fatal("postgres and signet need healthchecks")
	}
	// The image has no shell: the check runs the binary where the
	// Dockerfile puts it.
	if test := srv.HealthCheck.Test; len(test) < 3 || test[0] != "CMD" || test[1] != "/usr/local/bin/signet-server" || test[2] != "healthcheck" {
		t.Errorf("signet's healthcheck %q", test)
	}
	if initSvc.Image != srv.Image || srv.Build == nil || srv.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("init and signet must run the image deploy/Dockerfile builds: %q %q %+v", initSvc.Image, srv.Image, srv.Build)
	}
	if len(srv.Ports) != 1 || srv.Ports[0].Target != 8080 || srv.Ports[0].Published != "8080" {
		t.Errorf("signet publishes %+v, want 8080:8080", srv.Ports)
	}
	mount := func(s types.ServiceConfig, target string) types.ServiceVolumeConfig {
		t.Helper()
		for _, v := range s.Volumes {
			if v.Target == target {
				return v
			}
		}
		t.Fatalf("%s mounts nothing at %s", s.Name, target)
		return types.ServiceVolumeConfig{}
	}
	keysInit, keysSrv := mount(initSvc, volumePath), mount(srv, volumePath)
	if keysInit.Type != types.VolumeTypeVolume || keysInit.Source != keysSrv.Source || keysInit.ReadOnly || !keysSrv.ReadOnly {
		t.Errorf("the keys volume: init %+v, signet %+v; want one named volume, read-only for the server", keysInit, keysSrv)
	}
	cfgMount := mount(srv, "/etc/signet/signet.yaml")
	if cfgMount.Type != types.VolumeTypeBind || !slices.Equal(srv.Command, []string{"run", "--config", cfgMount.Target}) {
		t.Fatalf("signet runs %q with %+v", srv.Command, cfgMount)
	}

	// The database URL names the postgres service and its credentials.
	dbURL, err := url.Parse(env(srv, "DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := dbURL.User.Password()
	if dbURL.Hostname() != "postgres" || dbURL.User.Username() != env(pg, "POSTGRES_USER") || pw != env(pg, "POSTGRES_PASSWORD") || dbURL.Path != "/"+env(pg, "POSTGRES_DB") {
		t.Errorf("DATABASE_URL %s does not match the postgres service's %v", dbURL.Redacted(), pg.Environment)
	}

	// Every variable the configuration reads is set; every file it names
	// is in the keys volume (made by init) or is the mounted config.
	raw, err := os.ReadFile(cfgMount.Source)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgMount.Source, func(k string) string { return env(srv, k) })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("%s with the compose environment: %v", cfgMount.Source, err)
	}
	if cfg.PublicURL != env(srv, "SIGNET_PUBLIC_URL") || cfg.PublicURL != "http://localhost:8080" {
		t.Errorf("public_url %q", cfg.PublicURL)
	}
	for _, uri := range []string{cfg.Log.Signer, cfg.CT.Signer, cfg.CA.Signer, cfg.Timestamp.Signer, cfg.TUF.RootSigner, cfg.TUF.TargetsSigner, cfg.TUF.SnapshotSigner, cfg.TUF.TimestampSigner} {
		src, err := keys.PasswordSourceOf(uri)
		if err != nil {
			t.Fatal(err)
		}
		if src.Env != "" && env(srv, src.Env) == "" {
			t.Errorf("key %s reads $%s, which the compose file does not set", uri, src.Env)
		}
		if src.File == "" && src.Env == "" || !strings.HasPrefix(uri, "file://"+volumePath+"/") || src.File != "" && !strings.HasPrefix(src.File, volumePath+"/") {
			t.Errorf("key %s is not an encrypted file in the keys volume", uri)
		}
	}

	// init's command, then the server's, with the volume in a directory.
	bin := servertest.Build(t)
	vol := t.TempDir()
	local := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, volumePath, vol)
		}
		return out
	}
	for i, want := range []string{"Created the keys", "nothing to do"} {
		out, err := exec.Command(bin, local(initSvc.Command)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("init service %q, start %d: %v\n%s", initSvc.Command, i+1, err, out)
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(string(raw), volumePath, vol)), 0o600); err != nil {
		t.Fatal(err)
	}
	srvArgs := local(srv.Command)
	srvArgs[len(srvArgs)-1] = cfgPath
	cmd := exec.Command(bin, srvArgs...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=" + dbtest.NewURL(t),
		"SIGNET_PUBLIC_URL=" + env(srv, "SIGNET_PUBLIC_URL"), "SIGNET_HOSTNAME=" + env(srv, "SIGNET_HOSTNAME"),
		// Free ports instead of the container's 8080 and 9090.
		"SIGNET_LISTEN=127.0.0.1:0", "SIGNET_METRICS_LISTEN=127.0.0.1:0"}
	base := servertest.Start(t, cmd, "")

	// The compose healthcheck's command, at this server's address.
	check := slices.Clone(srv.HealthCheck.Test[1:])
	check[0] = bin
	check[len(check)-1] = strings.Replace(check[len(check)-1], "http://127.0.0.1:8080", base, 1)
	if out, err := exec.Command(check[0], check[1:]...).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "healthy: ") {
		t.Fatalf("healthcheck %q: %v\n%s", srv.HealthCheck.Test, err, out)
	}
	resp, err := http.Get(base + "/api/v1/trust/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		Tlogs, Ctlogs, CertificateAuthorities, TimestampAuthorities []json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Tlogs) != 1 || len(tr.Ctlogs) != 1 || len(tr.CertificateAuthorities) != 1 || len(tr.TimestampAuthorities) != 1 {
		t.Errorf("trusted root lists %d logs, %d CT logs, %d CAs, %d TSAs; want one of each", len(tr.Tlogs), len(tr.Ctlogs), len(tr.CertificateAuthorities), len(tr.TimestampAuthorities))
	}
	if r, err := http.Get(base + "/tuf/1.root.json"); err != nil || r.StatusCode != 200 {
		t.Errorf("TUF root: %v %v", r, err)
	} else {
		r.Body.Close()
	}
}
