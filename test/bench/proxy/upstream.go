package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The upstream runs as a process of its own, as an exporter does on a GPU
// node: were it a goroutine of the load generator, a direct scrape would
// never leave one Go runtime, while a proxied one crosses two processes
// and back, and the ratio would charge the proxy for that difference too.
//
// The bench starts its own binary again with upstreamEnv set to the
// payload size; the child listens, prints its address on one line and
// serves until it is killed.
const upstreamEnv = "PROXY_BENCH_UPSTREAM"

// upstream is a running upstream process.
type upstream struct {
	cmd  *exec.Cmd
	addr string
}

// startUpstream starts an upstream process serving a payload of size bytes,
// over TLS with the given files when certFile is set, through start.
func startUpstream(size int, certFile, keyFile string, start func(*exec.Cmd) error) (*upstream, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary to start the upstream: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%s,%s", upstreamEnv, size, certFile, keyFile))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("starting the upstream: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(cmd)
		return nil, fmt.Errorf("reading the upstream's address: %w", err)
	}
	return &upstream{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

// serveUpstreamProcess is the child's main: spec is upstreamEnv's value,
// "size,certFile,keyFile", with both files empty for plain HTTP.
func serveUpstreamProcess(spec string) error {
	var size int
	parts := strings.SplitN(spec, ",", 3)
	if len(parts) != 3 {
		return fmt.Errorf("%s=%q: want size,certFile,keyFile", upstreamEnv, spec)
	}
	if _, err := fmt.Sscan(parts[0], &size); err != nil {
		return fmt.Errorf("%s=%q: size: %w", upstreamEnv, spec, err)
	}
	payload := dcgmPayload(size)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(payload)
	})}
	fmt.Println(ln.Addr().String())
	if parts[1] == "" {
		return srv.Serve(ln)
	}
	cert, err := tls.LoadX509KeyPair(parts[1], parts[2])
	if err != nil {
		return fmt.Errorf("loading the upstream's certificate: %w", err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	return srv.ServeTLS(ln, "", "")
}
