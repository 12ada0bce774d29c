package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
)

// ProxyOptions is how StartProxy runs a proxy binary.
type ProxyOptions struct {
	// Args are the proxy's arguments but --secure-listen-address, and --proxy-endpoints-port
	// with Endpoints: StartProxy chooses those.
	Args []string
	// Endpoints gives the proxy an endpoints port too.
	Endpoints bool
	// Dir holds the proxy's log file.
	Dir string
	// Start starts the command; nil is (*exec.Cmd).Start. The benchmark pins the proxy to
	// CPUs with it.
	Start func(*exec.Cmd) error
}

// Proxy is a proxy binary (rbac-proxy, or kube-rbac-proxy in the benchmark) running as a child
// of the test, which it does not outlive.
type Proxy struct {
	// Addr is the 127.0.0.1:Port it serves TLS on; URL is https://Addr.
	Addr, URL string
	Port      int
	// EndpointsPort is its --proxy-endpoints-port; 0 without ProxyOptions.Endpoints.
	EndpointsPort int
	// Args is its whole command line.
	Args []string
	proc *process
}

const (
	// proxyStartTimeout bounds the wait for the first TLS handshake.
	proxyStartTimeout = 20 * time.Second
	// proxyStopTimeout bounds a graceful shutdown, in-flight requests included.
	proxyStopTimeout = 30 * time.Second
	// proxyStartAttempts is how many times ports are chosen before StartProxy gives up.
	proxyStartAttempts = 5
)

// errPortTaken is a proxy's exit because a port chosen for it was taken before it bound it.
var errPortTaken = errors.New("a port chosen for the proxy was taken before it bound it")

// StartProxy runs bin with o.Args on ports it chooses and waits until the proxy completes a TLS
// handshake. The proxy gets PATH and HOME from the environment and nothing else, so it never
// takes this machine's in-cluster variables for its configuration. A port that another process
// takes between its choice and the proxy's bind (packages' tests run in parallel) is chosen again.
func StartProxy(ctx context.Context, bin string, o ProxyOptions) (*Proxy, error) {
	for attempt := 1; ; attempt++ {
		p, err := startProxyOnce(ctx, bin, o)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == proxyStartAttempts {
			return p, err
		}
	}
}

// StartTestProxy is StartProxy for one test: it fails t on error, stops the proxy when t ends
// and logs the proxy's log when t failed. An empty o.Dir is a folder of t's.
func StartTestProxy(t testing.TB, bin string, o ProxyOptions) *Proxy {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := StartProxy(t.Context(), bin, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(bin), p.Log())
		}
	})
	return p
}

func startProxyOnce(ctx context.Context, bin string, o ProxyOptions) (*Proxy, error) {
	name := filepath.Base(bin)
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port}
	p.URL = "https://" + p.Addr
	p.Args = []string{"--secure-listen-address=" + p.Addr}
	if o.Endpoints {
		if p.EndpointsPort, err = testkit.FreePort(); err != nil {
			return nil, err
		}
		p.Args = append(p.Args, "--proxy-endpoints-port="+strconv.Itoa(p.EndpointsPort))
	}
	p.Args = append(p.Args, o.Args...)
	logFile, err := os.CreateTemp(o.Dir, name+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("creating the log file of %s: %w", name, err)
	}
	cmd := exec.Command(bin, p.Args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	start := o.Start
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if p.proc, err = startCommand(name, logFile, cmd, start); err != nil {
		return nil, err
	}
	if err := p.waitServing(ctx); err != nil {
		_ = p.proc.stop(proxyStopTimeout)
		return nil, err
	}
	return p, nil
}

// waitServing waits for a TLS handshake on the proxy's port, and fails at once if the proxy
// exits. The handshake verifies nothing: it only tells that the proxy has loaded its
// certificate and accepts connections.
func (p *Proxy) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, proxyStartTimeout)
	defer cancel()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // readiness probe only
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if done, err := p.proc.exited(); done {
			log := p.Log()
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, log)
			}
			return fmt.Errorf("%s exited: %v\n%s", p.proc.name, err, log)
		}
		conn, err := dialer.DialContext(ctx, "tcp", p.Addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving TLS on %s after %s: %w\n%s", p.proc.name, p.Addr, proxyStartTimeout, err, p.Log())
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM, waits for the proxy to exit (killing it after 30s) and returns its exit
// error: nil after a clean shutdown.
func (p *Proxy) Stop() error {
	if err := p.proc.stop(proxyStopTimeout); err != nil {
		return err
	}
	_, err := p.proc.exited()
	return err
}

// Running reports whether the proxy has not exited.
func (p *Proxy) Running() bool {
	done, _ := p.proc.exited()
	return !done
}

// Pid is the proxy's process id.
func (p *Proxy) Pid() int { return p.proc.cmd.Process.Pid }

// LogPath is the file the proxy's output goes to.
func (p *Proxy) LogPath() string { return p.proc.logPath }

// Log returns the proxy's whole output so far.
func (p *Proxy) Log() string {
	b, err := os.ReadFile(p.proc.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}
