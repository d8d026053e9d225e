package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/browsertest"
)

// The explorer in headless Chromium against a live dev instance: a search
// by the artifact's SHA-256 finds the entry signet made, the entry page
// shows its signer and verifies its inclusion proof and checkpoint in the
// browser; an entry whose body a proxy tampers with in transit fails the
// verification, loudly. Screenshots at desktop and phone width go to the
// test's temp dir (or $SIGNET_SCREENSHOTS, to keep them). Without JavaScript the same pages are readable.
func TestExplorerInChromium(t *testing.T) {
	x := newPinned(t)
	// The entry explored sits between two others, so its proof has a path
	// for the browser to climb.
	content := "explored artifact"
	var earlier string // the log's checkpoint after the first entry
	for i, signer := range []struct{ file, content, email string }{
		{"before.txt", "another artifact", "frank@example.com"},
		{"artifact.txt", content, "erin@example.com"},
		{"after.txt", "a third artifact", "frank@example.com"},
	} {
		blob := x.write(signer.file, signer.content)
		if out, err := runCLI(t, "sign-blob", blob, "--bundle", blob+".sigstore.json", "--yes", "--identity-token", devToken(t, x.base, signer.email)); err != nil {
			t.Fatalf("sign-blob %d: %v\n%s", i, err, out)
		}
		if i == 0 {
			var info struct {
				SignedTreeHead string `json:"signedTreeHead"`
			}
			resp, err := http.Get(x.base + "/api/v1/log")
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&info) //nolint:errcheck
			resp.Body.Close()
			earlier = info.SignedTreeHead
		}
	}
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	browser := browsertest.New(t)
	shots := t.TempDir()
	if dir := os.Getenv("SIGNET_SCREENSHOTS"); dir != "" {
		shots = dir // kept for review after the test
	}

	text := browsertest.Open(t, browser, x.base+"/explorer?q="+digest, "1 entry for an artifact SHA-256")
	if !strings.Contains(text, "erin@example.com") || !strings.Contains(text, "hashedrekord") {
		t.Fatalf("search results:\n%s", text)
	}
	text = browsertest.Click(t, browser, "table.results a", "Verified against the log key this server publishes")
	for _, want := range []string{"Entry 1", "erin@example.com", "sha256:" + digest, x.issuer, "checkpoint signed by the log key", "3 entries", "entry included at index 1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the entry page does not say %q:\n%s", want, text)
		}
	}
	browsertest.Screenshot(t, browser, 1280, 900, filepath.Join(shots, "entry-desktop.png"))
	browsertest.Screenshot(t, browser, 390, 844, filepath.Join(shots, "entry-phone.png"))
	browsertest.Open(t, browser, x.base+"/", "Trust material")
	browsertest.Screenshot(t, browser, 390, 844, filepath.Join(shots, "landing-phone.png"))
	for _, f := range []string{"entry-desktop.png", "entry-phone.png", "landing-phone.png"} {
		if st, err := os.Stat(filepath.Join(shots, f)); err != nil || st.Size() < 1000 {
			t.Fatalf("screenshot %s: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)

	// Proxies that change the entry page on its way: one character of the
	// body, of a proof hash, the checkpoint's tree size. Each must fail.
	entryPath := strings.TrimPrefix(mustLocation(t, x.base+"/explorer?q="+digest), x.base)
	target, _ := url.Parse(x.base)
	flip := func(re *regexp.Regexp) func([]byte) []byte {
		return func(page []byte) []byte {
			return re.ReplaceAllFunc(page, func(m []byte) []byte {
				m = bytes.Clone(m)
				if m[len(m)-1] == 'A' || m[len(m)-1] == '0' {
					m[len(m)-1]++
				} else if m[len(m)-1] >= 'a' && m[len(m)-1] <= 'f' {
					m[len(m)-1] = '0'
				} else {
					m[len(m)-1] = 'A'
				}
				return m
			})
		}
	}
	for name, tc := range map[string]struct {
		tamper func([]byte) []byte
		want   string
	}{
		"body":       {flip(regexp.MustCompile(`"body":"(.{20})(.)`)), "the entry's bytes do not hash to its UUID"},
		"proof hash": {flip(regexp.MustCompile(`"hashes":\["(.{10})(.)`)), "the entry is not in the tree"},
		"checkpoint": {func(page []byte) []byte { return bytes.Replace(page, []byte(`\n3\n`), []byte(`\n4\n`), 1) }, "does not verify with the log key"},
	} {
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ModifyResponse = func(resp *http.Response) error {
			if !strings.HasPrefix(resp.Request.URL.Path, "/explorer/entry/") {
				return nil
			}
			page, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			changed := tc.tamper(page)
			if bytes.Equal(changed, page) {
				t.Errorf("%s: the proxy changed nothing", name)
			}
			resp.Body = io.NopCloser(bytes.NewReader(changed))
			resp.ContentLength = int64(len(changed))
			resp.Header.Set("Content-Length", strconv.Itoa(len(changed)))
			return nil
		}
		tamper := httptest.NewServer(proxy)
		text := browsertest.Open(t, browser, tamper.URL+entryPath, "DOES NOT VERIFY")
		tamper.Close()
		if !strings.Contains(text, tc.want) {
			t.Errorf("tampered %s: the page does not say %q:\n%s", name, tc.want, text)
		}
	}

	// The log only grew since the checkpoint saved after the first entry;
	// a checkpoint with another root is refused, and so is a proof that a
	// proxy changes on its way.
	check := func(base, checkpoint, want string) string {
		t.Helper()
		browsertest.Open(t, browser, base+"/explorer/consistency", "Has the log only grown?")
		browsertest.Fill(t, browser, "#earlier", checkpoint)
		return browsertest.Click(t, browser, "#consistency-form button", want)
	}
	if text := check(x.base, earlier, "Consistent:"); !strings.Contains(text, "the tree of 1 entries is a prefix of today's 3") {
		t.Fatalf("consistency:\n%s", text)
	}
	lines := strings.Split(earlier, "\n")
	lines[2] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	if text := check(x.base, strings.Join(lines, "\n"), "NOT CONSISTENT"); !strings.Contains(text, "not signed by the log key") {
		t.Fatalf("a forged earlier checkpoint:\n%s", text)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/api/v1/log/proof" {
			return nil
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		changed := flip(regexp.MustCompile(`"hashes":\["(.{10})(.)`))(page)
		resp.Body = io.NopCloser(bytes.NewReader(changed))
		resp.ContentLength = int64(len(changed))
		resp.Header.Set("Content-Length", strconv.Itoa(len(changed)))
		return nil
	}
	tamper := httptest.NewServer(proxy)
	defer tamper.Close()
	if text := check(tamper.URL, earlier, "NOT CONSISTENT"); !strings.Contains(text, "does not lead") {
		t.Fatalf("a tampered consistency proof:\n%s", text)
	}

	// Without JavaScript: the server renders search results and the entry.
	resp, err := http.Get(x.base + "/explorer?q=erin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "/explorer/entry/") || !strings.Contains(string(page), "1 entry for an email") {
		t.Fatalf("search by email without JavaScript: %d\n%s", resp.StatusCode, page)
	}
	for q, status := range map[string]int{"not-a-thing": 400, strings.Repeat("a", 20000): 413} {
		resp, err := http.Get(x.base + "/explorer?q=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("search for %.20q: %d, want %d", q, resp.StatusCode, status)
		}
	}
	// A key file upload: searched as a pasted key; an oversized one refused.
	upload := func(content []byte) (int, string) {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("keyfile", "release.pub")
		fw.Write(content) //nolint:errcheck
		mw.Close()
		resp, err := http.Post(x.base+"/explorer", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(page)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	if status, page := upload(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); status != 200 || !strings.Contains(page, "0 entries for a public key") {
		t.Errorf("a key file upload: %d\n%s", status, page)
	}
	if status, page := upload([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfn5ULqHlfLqcyYlmF8DpS3nZjR1xWD4rbsu5R+oL8K release@example.com\n")); status != 200 || !strings.Contains(page, "0 entries for a public key (ssh)") {
		t.Errorf("an SSH key file upload: %d\n%s", status, page)
	}
	if status, _ := upload(bytes.Repeat([]byte("a"), 40<<10)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized key file: %d", status)
	}
	for path, want := range map[string]int{
		"/explorer/entry/zz": 400,
		"/explorer/entry/" + strings.Repeat("f", 16) + digest: 400, // not a tree ID
		"/explorer/entry/0000000000000001" + digest:           404, // a tree that is not this log's
		"/explorer?q=1&by=q":                                  200,
		"/explorer?q=" + digest + "&page=368934881474191034":  200, // clamped, not overflowed
		"/explorer?q=1&key=-----BEGIN+PUBLIC+KEY-----&by=q":   200, // the button pressed decides
		"/explorer/static/":                                   404, // no listing
		"/explorer?q=" + url.QueryEscape("https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"): 200, // a URI identity
	} {
		resp, err := http.Get(x.base + path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d\n%s", path, resp.StatusCode, want, page)
		}
		if strings.Contains(path, "by=q") && !strings.Contains(string(page), "1 entry for a log index") {
			t.Errorf("%s: not taken for a log index:\n%s", path, page)
		}
		if strings.Contains(path, "acme") && !strings.Contains(string(page), "0 entries for an identity") {
			t.Errorf("%s: not taken for an identity:\n%s", path, page)
		}
	}
}

// mustLocation is the first entry link on a search page.
func mustLocation(t *testing.T, searchURL string) string {
	t.Helper()
	resp, err := http.Get(searchURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`href="(/explorer/entry/[0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no entry link on %s:\n%s", searchURL, page)
	}
	u, _ := url.Parse(searchURL)
	return u.Scheme + "://" + u.Host + string(m[1])
}
