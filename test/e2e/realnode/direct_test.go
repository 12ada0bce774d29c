package realnode

import (
	"context"
	"crypto/tls"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// What a connection from the host to a port of an exporter Pod finds.
type landing string

const (
	onProxy landing = "the proxy (TLS, 401 without credentials)"
	refused landing = "connection refused"
)

// testDirect: from the host, to the Pod IP, the app's original port is the proxy in both
// modes (takeover: the proxy holds it; redirect: nftables sends it to the proxy though the app
// listens there), and the port the app was moved to in takeover mode refuses (loopback only).
func testDirect(t *testing.T, e *env) {
	cases := []struct {
		mode inject.PortMode
		port int
		want landing
	}{
		{inject.PortModeTakeover, exporterPort, onProxy},
		{inject.PortModeTakeover, takeoverPort, refused},
		{inject.PortModeRedirect, exporterPort, onProxy},
		{inject.PortModeRedirect, redirectProxyPort, onProxy},
	}
	for _, c := range cases {
		for _, w := range workloads {
			if w.mode != c.mode {
				continue
			}
			addr := net.JoinHostPort(e.pods[w.name].Status.PodIP, strconv.Itoa(c.port))
			t.Run(w.name+" "+addr, func(t *testing.T) {
				got, err := e.land(t.Context(), addr)
				if got != c.want {
					t.Errorf("%s (%s): %s, want %s (%v)", addr, c.mode, got, c.want, err)
				}
			})
		}
	}
}

// land says what answers addr: a TLS handshake verified as the proxy's certificate and a 401
// to a request without credentials, or a refused connection.
func (e *env) land(ctx context.Context, addr string) (landing, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return refused, err
	}
	if err != nil {
		return "", err
	}
	conn.Close()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: e.tlsConfig(), DisableKeepAlives: true}}
	res, _, err := fetch(ctx, c, "https://"+addr+"/metrics")
	if err != nil {
		return "not TLS with the proxy's certificate", err
	}
	if res.StatusCode != http.StatusUnauthorized {
		return landing("HTTP " + res.Status), nil
	}
	return onProxy, nil
}

func (e *env) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.servingCA, ServerName: e.serverName, MinVersion: tls.VersionTLS12}
}

// servedSerial returns the serial number of the certificate addr serves now, on a new handshake.
func (e *env) servedSerial(addr string) (*big.Int, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: e.tlsConfig()}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}
