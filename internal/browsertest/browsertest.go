// Package browsertest drives Debian's Chromium, headless, for tests of
// pages a person uses: the dev issuer's sign-in forms. A missing Chromium
// fails the test (make test-deps installs it); it never skips.
package browsertest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is Debian's chromium package's binary.
const Path = "/usr/bin/chromium"

// New starts a headless Chromium with a fresh profile for the test and
// returns the context that drives its tab. The browser ends with the test.
func New(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("Chromium is needed for this test: %v (make test-deps installs Debian's chromium)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		// No connections of its own: the machine has no internet, and
		// Chromium's refused attempts would only slow it.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root (CI runs tests so).
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, so a failure to start is reported as that.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// SignIn opens a sign-in page, types email, presses the approve button,
// and waits (up to a minute) for a page whose text contains want: the
// issuer's own answer, or the page of the program the browser was sent
// back to. It returns that page's text.
func SignIn(t *testing.T, ctx context.Context, pageURL, email, want string) string {
	t.Helper()
	return submit(t, ctx, pageURL, email, "approve", want)
}

// Deny opens a sign-in page and presses its deny button, then waits for a
// page saying want, and returns its text.
func Deny(t *testing.T, ctx context.Context, pageURL, want string) string {
	t.Helper()
	return submit(t, ctx, pageURL, "", "deny", want)
}

func submit(t *testing.T, ctx context.Context, pageURL, email, button, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("email"))}
	if email != "" {
		steps = append(steps, chromedp.SetValue(chromedp.ID("email"), email))
	}
	if err := chromedp.Do(ctx, append(steps, chromedp.Click(chromedp.ID(button)))...); err != nil {
		t.Fatalf("pressing %s at %s: %v", button, pageURL, err)
	}
	return waitText(t, ctx, "pressing "+button, want)
}

// Open loads pageURL and waits (up to a minute) for a page whose text
// contains want, and returns that text.
func Open(t *testing.T, ctx context.Context, pageURL, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("opening %s: %v", pageURL, err)
	}
	return waitText(t, ctx, "opening "+pageURL, want)
}

// Click clicks the first element matching the CSS selector and waits for a
// page whose text contains want.
func Click(t *testing.T, ctx context.Context, selector, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		t.Fatalf("clicking %s: %v", selector, err)
	}
	return waitText(t, ctx, "clicking "+selector, want)
}

func waitText(t *testing.T, ctx context.Context, what, want string) string {
	t.Helper()
	for {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err == nil && strings.Contains(text, want) {
			return text
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %s, the browser shows %s:\n%s\nwant a page saying %q (%v)", what, loc, text, want, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Screenshot writes the whole page, at a window width and height, as a
// PNG to path, for a person to look at.
func Screenshot(t *testing.T, ctx context.Context, width, height int64, path string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("resizing to %dx%d: %v", width, height, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Fill sets the value of the element matching the CSS selector (an input
// or a textarea) as if typed.
func Fill(t *testing.T, ctx context.Context, selector, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(selector)), chromedp.SetValue(chromedp.CSS(selector), value)); err != nil {
		t.Fatalf("filling %s: %v", selector, err)
	}
}
