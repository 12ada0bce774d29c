package image

import (
	"archive/tar"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
)

// runFromImage runs the image's program from a copy of the image's own
// filesystem (chroot) as the image's user: what a container runtime would
// do, less the namespaces. It needs root; without it, it says so and skips.
func runFromImage(t *testing.T, s image.Spec, fsys map[string]entry) {
	t.Run("run", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("running a program from its image's files needs root (chroot); the image's contents were checked above")
		}
		rootfs := extract(t, fsys)
		switch s.Name {
		case image.Proxy:
			for _, prog := range []string{"/rbac-proxy", "/rbac-proxy-injector"} {
				out, err := inImage(t.Context(), rootfs, s, []string{prog, "--version"}).CombinedOutput()
				if err != nil || !strings.Contains(string(out), testVersion) {
					t.Errorf("%s --version in the image = %q (%v)", prog, out, err)
				}
			}
		case image.SampleExporter:
			addr := freeAddr(t)
			serveAndStop(t, inImage(t.Context(), rootfs, s, append(s.Entrypoint, "-a", addr)), "http://"+addr+"/health")
		case image.Pause:
			serveAndStop(t, inImage(t.Context(), rootfs, s, s.Entrypoint), "")
		case image.Prometheus:
			// The image's default command, with a config of its own: the TSDB in
			// /prometheus, so this proves the data folder is writable by the user.
			if err := os.WriteFile(filepath.Join(rootfs, "etc/prometheus/prometheus.yml"), []byte("global: {}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			addr := freeAddr(t)
			args := append(append(append([]string{}, s.Entrypoint...), s.Cmd...), "--web.listen-address="+addr)
			serveAndStop(t, inImage(t.Context(), rootfs, s, args), "http://"+addr+"/-/ready")
			if entries, _ := os.ReadDir(filepath.Join(rootfs, "prometheus")); len(entries) == 0 {
				t.Error("Prometheus wrote nothing to /prometheus")
			}
		default:
			t.Fatalf("no way to run %s known to this test", s.Name)
		}
	})
}

// inImage is args run chrooted into rootfs as s.User, in s.WorkingDir.
func inImage(ctx context.Context, rootfs string, s image.Spec, args []string) *exec.Cmd {
	uid, gid, _ := strings.Cut(s.User, ":")
	u, _ := strconv.ParseUint(uid, 10, 32)
	g, _ := strconv.ParseUint(gid, 10, 32)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = "/"
	if s.WorkingDir != "" {
		cmd.Dir = s.WorkingDir
	}
	cmd.Env = s.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
	return cmd
}

// serveAndStop starts cmd, waits for url to answer 200 (when url is set),
// sends SIGTERM and expects exit status 0 soon after.
func serveAndStop(t *testing.T, cmd *exec.Cmd, url string) {
	t.Helper()
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once cmd is waited for; waitErr is its result.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	if url != "" {
		if err := waitOK(url, exited); err != nil {
			stop()
			t.Fatalf("%v (exit: %v)\n%s", err, waitErr, log.String())
		}
	} else {
		// Nothing to poll: give it time to install its signal handlers (a
		// millisecond or so), generously for a loaded machine.
		time.Sleep(time.Second)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		stop()
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("after SIGTERM: %v\n%s", waitErr, log.String())
		}
	case <-time.After(30 * time.Second):
		stop()
		t.Errorf("still running 30s after SIGTERM\n%s", log.String())
	}
}

// waitOK polls url until it answers 200, the process exits or a minute passes.
func waitOK(url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 in 60s (last: %v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// extract writes fsys into a new folder with its modes and owners.
func extract(t *testing.T, fsys map[string]entry) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Parents sort before their children in the image, but the map does
	// not: create folders first.
	for _, pass := range []byte{tar.TypeDir, tar.TypeReg} {
		for p, e := range fsys {
			if e.hdr.Typeflag != pass {
				continue
			}
			dst := filepath.Join(rootfs, p)
			var err error
			if pass == tar.TypeDir {
				err = os.MkdirAll(dst, 0o755)
			} else {
				err = os.WriteFile(dst, e.content, 0o600)
			}
			if err == nil {
				err = os.Chmod(dst, os.FileMode(e.hdr.Mode).Perm())
			}
			if err == nil {
				err = os.Lchown(dst, e.hdr.Uid, e.hdr.Gid)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return rootfs
}
