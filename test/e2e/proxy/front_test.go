package proxy_test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"

	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// apiFront stands between a proxy and the real API server. It forwards with
// the admin's credentials, counts TokenReviews and SubjectAccessReviews, and
// can turn into a black hole: connections are accepted and never answered.
type apiFront struct {
	t          *testing.T
	ln         net.Listener
	srv        *http.Server
	kubeconfig string

	tokenReviews atomic.Int64
	sars         atomic.Int64

	mu        sync.Mutex
	blackHole bool
	conns     map[net.Conn]bool // live connections handed to the server
	held      []net.Conn        // connections swallowed while black-holed
}

func newAPIFront(t *testing.T) *apiFront {
	t.Helper()
	target, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFront{t: t, conns: map[net.Conn]bool{}}
	f.ln = &frontListener{Listener: ln, f: f}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	f.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
				f.tokenReviews.Add(1)
			case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
				f.sars.Add(1)
			}
			rp.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			f.mu.Lock()
			defer f.mu.Unlock()
			switch s {
			case http.StateNew:
				f.conns[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(f.conns, c)
			}
		},
	}
	go func() { _ = f.srv.Serve(f.ln) }()
	t.Cleanup(func() {
		_ = f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.held {
			_ = c.Close()
		}
	})

	// A kubeconfig for the proxy: plain HTTP to the front, no credentials.
	kc := clientcmdapi.NewConfig()
	kc.Clusters["front"] = &clientcmdapi.Cluster{Server: "http://" + ln.Addr().String()}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["front"] = &clientcmdapi.Context{Cluster: "front", AuthInfo: "proxy"}
	kc.CurrentContext = "front"
	f.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, f.kubeconfig); err != nil {
		t.Fatal(err)
	}
	return f
}

// setBlackHole starts (or ends) the outage: open connections are cut and new
// ones are accepted but never read from nor answered.
func (f *apiFront) setBlackHole(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blackHole = on
	if on {
		for c := range f.conns {
			_ = c.Close()
		}
	}
}

func (f *apiFront) reviews() (tokenReviews, sars int64) {
	return f.tokenReviews.Load(), f.sars.Load()
}

type frontListener struct {
	net.Listener
	f *apiFront
}

func (l *frontListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.f.mu.Lock()
		hole := l.f.blackHole
		if hole {
			l.f.held = append(l.f.held, c)
		}
		l.f.mu.Unlock()
		if !hole {
			return c, nil
		}
	}
}

// writeKubeconfigTo is a kubeconfig pointing at addr (for unreachable servers).
func writeKubeconfigTo(t *testing.T, server string) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}
