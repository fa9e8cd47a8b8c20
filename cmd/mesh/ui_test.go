package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUICommand: mesh ui serves the history on loopback at the URL it
// prints (and keeps in .mesh/ui.url), which a browser opens once: the
// token becomes a cookie; without it nothing is served. It stops on an
// interrupt.
func TestUICommand(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	dir := t.TempDir()
	mustMesh(t, bin, dir, "init")
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644)
	mustMesh(t, bin, dir, "commit", "-m", "a commit to browse")
	cmd := meshCmd(bin, dir, "ui", "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { io.Copy(io.Discard, out); done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("mesh ui did not stop on an interrupt")
		}
	}()
	var u string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, ".mesh", "ui.url")); err == nil {
			u = strings.TrimSpace(string(b))
			break
		}
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Query().Get("token") == "" || !strings.HasPrefix(pu.Host, "127.0.0.1:") {
		t.Fatalf("URL %q: %v", u, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ".mesh", "ui.url")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ui.url is readable by others: %v %v", fi.Mode(), err)
	}
	bare := "http://" + pu.Host + "/history"
	if resp, err := http.Get(bare); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v %v", resp, err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "a commit to browse") || resp.Request.URL.Query().Get("token") != "" {
		t.Fatalf("first visit: %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	resp, err = c.Get(bare)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with the cookie: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestDaemonUI: mesh daemon --ui serves the history browser while it
// runs, says so on the devices page, and stops with the daemon.
func TestDaemonUI(t *testing.T) {
	t.Parallel() // mostly waiting on processes: the other core works meanwhile
	bin := meshBin(t)
	dir := t.TempDir()
	mustMesh(t, bin, dir, "init")
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644)
	mustMesh(t, bin, dir, "commit", "-m", "first")
	d := startDaemon(t, bin, dir, "", "--ui", "127.0.0.1:0")
	var u *url.URL
	waitFor(t, "the daemon's history browser", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, ".mesh", "ui.url"))
		if err == nil {
			u, err = url.Parse(strings.TrimSpace(string(b)))
		}
		return err == nil
	}, d)
	req, _ := http.NewRequest("GET", "http://"+u.Host+"/api/devices", nil)
	req.Header.Set("Authorization", "Bearer "+u.Query().Get("token"))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.log.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"daemon": true`) {
		t.Fatalf("devices: %d %s", resp.StatusCode, body)
	}
	// Prometheus's text format, rounds counted.
	waitFor(t, "a sync round in /metrics", func() bool {
		req, _ := http.NewRequest("GET", "http://"+u.Host+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+u.Query().Get("token"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(string(b), "# TYPE mesh_sync_rounds_total counter") &&
			!strings.Contains(string(b), "mesh_sync_rounds_total 0\n") && strings.Contains(string(b), "mesh_conflicts_open 0")
	}, d)
	if resp, err := http.Get("http://" + u.Host + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %v %v", resp, err)
	}
	// A device that joins from the daemon: what it was sent is counted
	// under its ID.
	b := filepath.Join(t.TempDir(), "b")
	mustMesh(t, bin, dir, "join", strings.TrimSpace(mustMesh(t, bin, dir, "invite")), b)
	bID := strings.TrimSpace(mustMesh(t, bin, b, "id"))
	waitFor(t, "bytes sent to the joined device in /metrics", func() bool {
		req, _ := http.NewRequest("GET", "http://"+u.Host+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+u.Query().Get("token"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, `mesh_sent_bytes_total{device="`+bID+`"} `); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				return err == nil && n > 0
			}
		}
		return false
	}, d)
	d.stop(t)
	if _, err := http.Get("http://" + u.Host + "/history"); err == nil {
		t.Fatal("the history browser still answers after the daemon stopped")
	}
}
