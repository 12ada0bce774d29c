package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The upstream runs as a process of its own, as an exporter does on a GPU
// node: were it a goroutine of the load generator, a direct scrape would
// never leave one Go runtime, while a proxied one crosses two processes
// and back, and the ratio would charge the proxy for that difference too.
//
// The bench starts its own binary again with upstreamEnv set and the
// payload size, certificate and key files (both empty for plain HTTP) as
// arguments. The child listens, prints its address on one line and serves
// until its standard input closes, which happens when the bench exits in
// any way, killed included.
const upstreamEnv = "PROXY_BENCH_UPSTREAM"

// upstream is a running upstream process.
type upstream struct {
	cmd  *exec.Cmd
	addr string
}

// startUpstream starts an upstream process serving a payload of size bytes
// (of kind: "" for dcgmPayload, else one of tenantPayloads), over TLS with
// the given files when certFile is set, through start.
func startUpstream(size int, kind, certFile, keyFile string, start func(*exec.Cmd) error) (*upstream, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary to start the upstream: %w", err)
	}
	cmd := exec.Command(self, strconv.Itoa(size), certFile, keyFile, kind)
	cmd.Env = append(os.Environ(), upstreamEnv+"=1")
	cmd.Stderr = os.Stderr
	// The child exits when this pipe closes; nothing is ever written to it.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := start(cmd); err != nil {
		if cmd.Process != nil {
			stop(cmd)
		}
		return nil, fmt.Errorf("starting the upstream: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(cmd)
		return nil, fmt.Errorf("reading the upstream's address: %w", err)
	}
	return &upstream{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

// serveUpstreamProcess is the child's main; args are the payload size, the
// certificate file, the key file and the payload's kind.
func serveUpstreamProcess(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("arguments %q: want size, certificate file, key file and kind", args)
	}
	size, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("payload size %q: %w", args[0], err)
	}
	payload := dcgmPayload(size)
	if args[3] != "" {
		render, ok := tenantPayloads[args[3]]
		if !ok {
			return fmt.Errorf("payload kind %q", args[3])
		}
		payload = []byte(render(size))
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(payload)
	})}
	if args[1] != "" {
		cert, err := tls.LoadX509KeyPair(args[1], args[2])
		if err != nil {
			return fmt.Errorf("loading the upstream's certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Println(ln.Addr().String())
	if srv.TLSConfig == nil {
		return srv.Serve(ln)
	}
	return srv.ServeTLS(ln, "", "")
}
