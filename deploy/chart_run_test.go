package deploy

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/servertest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// The chart's containers, run as the pod would run them: the init
// container's exact arguments make the keys (twice: the second start changes
// nothing), and the server's exact arguments on the rendered signet.yaml
// start the log, CA + CT, TSA and TUF and answer the probes' path. The
// pod's mount paths become temporary directories.
func TestChartContainersStartAServer(t *testing.T) {
	m := mustRender(t, required())
	pod := m.deployment.Spec.Template.Spec
	dirs := map[string]string{}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		for _, vm := range c.VolumeMounts {
			if dirs[vm.MountPath] == "" {
				dirs[vm.MountPath] = filepath.Join(t.TempDir(), vm.Name)
			}
		}
	}
	// One pass: a replacement is never replaced again (the temporary
	// directories start with /tmp, a mount path of the pod too).
	var pairs []string
	for mount, dir := range dirs {
		pairs = append(pairs, mount, dir)
	}
	local := strings.NewReplacer(pairs...).Replace
	// The ConfigMap, where the pod mounts it.
	cfgDir := dirs["/etc/signet"]
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "signet.yaml"), []byte(local(m.configMap.Data["signet.yaml"])), 0o600); err != nil {
		t.Fatal(err)
	}

	bin := servertest.Build(t)
	run := func(c corev1.Container) *exec.Cmd {
		args := make([]string, len(c.Args))
		for i, a := range c.Args {
			args[i] = local(a)
		}
		return exec.Command(bin, args...)
	}
	initC := container(t, m.deployment, "init")
	for i, want := range []string{"Created the keys", "nothing to do"} {
		out, err := run(initC).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("init container, start %d: %v\n%s", i+1, err, out)
		}
	}

	srv := container(t, m.deployment, "signet")
	cmd := run(srv)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbtest.NewURL(t),
		// Free ports instead of the pod's 8080 and 9090.
		"SIGNET_LISTEN=127.0.0.1:0", "SIGNET_METRICS_LISTEN=127.0.0.1:0"}
	base := servertest.Start(t, cmd, "")
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get(srv.ReadinessProbe.HTTPGet.Path); resp.StatusCode != http.StatusOK {
		t.Fatalf("the probes' %s answers %s", srv.ReadinessProbe.HTTPGet.Path, resp.Status)
	}
	var tr struct {
		Tlogs, Ctlogs, CertificateAuthorities, TimestampAuthorities []json.RawMessage
	}
	if err := json.NewDecoder(get("/api/v1/trust/trusted_root.json").Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Tlogs) != 1 || len(tr.Ctlogs) != 1 || len(tr.CertificateAuthorities) != 1 || len(tr.TimestampAuthorities) != 1 {
		t.Errorf("trusted root lists %d logs, %d CT logs, %d CAs, %d TSAs; want one of each", len(tr.Tlogs), len(tr.Ctlogs), len(tr.CertificateAuthorities), len(tr.TimestampAuthorities))
	}
	if resp := get("/tuf/1.root.json"); resp.StatusCode != http.StatusOK {
		t.Errorf("TUF root: %s", resp.Status)
	}
}
