// Package redirect checks the nftables rules of rbac-proxy.io/port-mode=redirect against the
// kernel: in a network namespace made by the test (ip netns) with a veth pair into it, the init
// container's command (rbac-proxy-injector redirect, run with ip netns exec) must send a
// connection from outside to the app's port to the proxy's port, while the proxy's own user still
// reaches the app on 127.0.0.1.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for the namespace) and iproute2's ip. When the
// kernel refuses the rules the test fails with the kernel's error: it never skips.
package redirect

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/redirect"
)

const (
	appPort   = 9400 // the protected port
	proxyPort = 8443 // the proxy's port
	proxyUID  = 65532
	hostAddr  = "10.203.0.1"
	podAddr   = "10.203.0.2"
)

func ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on an OS thread moved into the namespace; the thread is thrown away afterwards
// (the goroutine exits locked), so no other goroutine ever runs in the namespace.
func inNetns(t *testing.T, ns string, f func() error) error {
	t.Helper()
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}

// serve answers every connection with name and closes it.
func serve(t *testing.T, l net.Listener, name string) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
}

func read(c net.Conn, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestRedirectInNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and a veth pair: run it as root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := framework.Build(ctx, "./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}

	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns, hostIf, podIf := "rbac-proxy-e2e-"+suffix, "rpe2e"+suffix, "rpe2ep"+suffix
	ip(t, "netns", "add", ns)
	t.Cleanup(func() {
		// Deleting the namespace deletes its end of the veth pair and with it the host's end.
		_ = exec.Command("ip", "link", "del", hostIf).Run()
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	ip(t, "link", "add", hostIf, "type", "veth", "peer", "name", podIf, "netns", ns)
	ip(t, "addr", "add", hostAddr+"/30", "dev", hostIf)
	ip(t, "link", "set", hostIf, "up")
	ip(t, "-n", ns, "addr", "add", podAddr+"/30", "dev", podIf)
	ip(t, "-n", ns, "link", "set", podIf, "up")
	ip(t, "-n", ns, "link", "set", "lo", "up")

	// The init container's command, twice: the second run must replace the table, not add to it.
	for i := 0; i < 2; i++ {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "redirect",
			"--port="+strconv.Itoa(appPort), "--to="+strconv.Itoa(proxyPort), "--exclude-uid="+strconv.Itoa(proxyUID)).CombinedOutput()
		if err != nil {
			t.Fatalf("rbac-proxy-injector redirect in %s (run %d) failed; the kernel refused the rules: %v\n%s", ns, i+1, err, out)
		}
		if i == 0 {
			t.Logf("rbac-proxy-injector redirect:\n%s", out)
		}
	}
	if err := inNetns(t, ns, func() error {
		got, err := redirect.Installed()
		if err != nil {
			return err
		}
		if got["prerouting"] != 1 || got["output"] != 1 {
			return fmt.Errorf("after two runs the table holds %v rules, want one per chain", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The app on :9400 and the proxy stand-in on :8443, both inside the namespace.
	if err := inNetns(t, ns, func() error {
		for port, name := range map[int]string{appPort: "app", proxyPort: "proxy"} {
			l, err := net.Listen("tcp4", ":"+strconv.Itoa(port))
			if err != nil {
				return err
			}
			serve(t, l, name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// From outside, through the veth: the app's port lands on the proxy; the proxy's port too.
	for _, c := range []struct {
		port int
		want string
	}{{appPort, "proxy"}, {proxyPort, "proxy"}} {
		got, err := read(net.DialTimeout("tcp4", net.JoinHostPort(podAddr, strconv.Itoa(c.port)), 5*time.Second))
		if err != nil || got != c.want {
			t.Errorf("from outside to %s:%d: answered %q (%v), want %q", podAddr, c.port, got, err, c.want)
		}
	}

	// Inside: the proxy's user reaches the app on 127.0.0.1:9400; any other user lands on the proxy.
	for _, c := range []struct {
		uid  int
		want string
	}{{proxyUID, "app"}, {0, "proxy"}, {1000, "proxy"}} {
		var got string
		err := inNetns(t, ns, func() error {
			// The socket belongs to the thread's filesystem user ID (what meta skuid matches);
			// setfsuid changes only this thread, which is thrown away afterwards.
			unix.Setfsuid(c.uid)
			var err error
			got, err = read(net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(appPort)), 5*time.Second))
			return err
		})
		if err != nil || got != c.want {
			t.Errorf("inside, uid %d to 127.0.0.1:%d: answered %q (%v), want %q", c.uid, appPort, got, err, c.want)
		}
	}
}
