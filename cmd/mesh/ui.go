package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mesh-sync/mesh/internal/repo"
	"github.com/mesh-sync/mesh/internal/syncer"
	"github.com/mesh-sync/mesh/internal/ui"
	"github.com/mesh-sync/mesh/object"
	"github.com/urfave/cli/v2"
)

func uiCommands(st *state) []*cli.Command {
	return []*cli.Command{{
		Name:  "ui",
		Usage: "browse this repository's history in a web browser: every version of every file, diffs, restore",
		Description: "Serves a local web app until interrupted and prints its URL, which holds a random\n" +
			"token: every request needs it (a cookie after the first visit). It listens on\n" +
			"loopback; a --listen on another address still needs the token, and anyone who can\n" +
			"reach it and has the URL can restore files here. The same data is JSON under /api/.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7480", Usage: "`HOST:PORT` to listen on (port 0 picks a free one)"},
			&cli.BoolFlag{Name: "open", Usage: "open the URL in the default browser"},
		},
		Action: repoAction(st, nil, func(c *cli.Context, r *repo.Repo) error {
			u, serve, err := startUI(st, r, c.String("listen"), false, nil)
			if err != nil {
				return err
			}
			st.printf("%s\n", u)
			if c.Bool("open") {
				openBrowser(st, u)
			}
			return serve(c.Context)
		}),
	}}
}

// startUI listens on addr and returns the history browser's URL, and
// serve, which serves until ctx ends. The URL is also kept in
// .mesh/ui.url, readable by this user only.
func startUI(st *state, r *repo.Repo, addr string, inDaemon bool, metrics *syncer.Metrics) (string, func(context.Context) error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	if host, _, _ := net.SplitHostPort(bound); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(st.stderr, "mesh: the history browser listens on %s, beyond this machine: whoever has its URL can read every version and restore files\n", bound)
	}
	log := slog.New(slog.NewTextHandler(st.stderr, nil))
	o := ui.Options{Addr: bound, Log: log, InDaemon: inDaemon}
	if metrics != nil {
		o.Metrics = func(w io.Writer) {
			open, _ := r.Conflicts()
			metrics.WritePrometheus(w, len(open))
		}
	}
	s, err := ui.New(r, o)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	u := s.URL(bound)
	if err := object.WriteFileAtomic(filepath.Join(r.Meta, "ui.url"), []byte(u+"\n"), 0o600, false); err != nil {
		ln.Close()
		return "", nil, err
	}
	serve := func(ctx context.Context) error {
		srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		err := srv.Serve(ln)
		<-stopped
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return u, serve, nil
}

// openBrowser asks the desktop to open u; failing says so and goes on.
func openBrowser(st *state, u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(st.stderr, "mesh: could not open a browser (%v); open the URL above\n", err)
		return
	}
	go cmd.Wait()
}
