package realnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// testRotation renews the first exporter's Certificate as `cmctl renew` does and waits until
// its proxy serves the renewed certificate, which only the kubelet's update of the Pod's
// Secret volume brings it; every scrape of every target in that window must have succeeded.
func testRotation(t *testing.T, e *env) {
	ctx := t.Context()
	w := workloads[0]
	pod := e.pods[w.name]
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(exporterPort))
	secretName := tlsSecretOf(pod)
	if secretName == "" {
		t.Fatalf("Pod %s mounts no Secret as %s", pod.Name, inject.TLSVolume)
	}
	cert, err := certificateFor(ctx, e.ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	old, err := cp.Clientset.CoreV1().Secrets(e.ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.servedSerial(addr)
	if err != nil {
		t.Fatalf("the certificate %s serves: %v", addr, err)
	}

	// Prometheus keeps its connections across the swap; this scraper shakes hands anew every
	// 200ms, with Prometheus' client certificate, so each new handshake is counted too.
	fresh := e.freshScraper(t)
	defer fresh.stop()
	go fresh.run(addr)

	start := time.Now()
	if err := cp.RenewCertificate(ctx, e.ns, cert); err != nil {
		t.Fatal(err)
	}
	var renewed *corev1.Secret
	err = framework.Eventually(ctx, 90*time.Second, "cert-manager to renew Secret "+secretName, func(ctx context.Context) (bool, error) {
		s, err := cp.Clientset.CoreV1().Secrets(e.ns).Get(ctx, secretName, metav1.GetOptions{})
		renewed = s
		return err == nil && !bytes.Equal(s.Data[corev1.TLSCertKey], old.Data[corev1.TLSCertKey]), err
	})
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now()
	leaf, err := testpki.ParseCertificate(renewed.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatal(err)
	}
	var after *big.Int
	err = framework.Eventually(ctx, 2*time.Minute, "the proxy to serve the renewed certificate", func(ctx context.Context) (bool, error) {
		var err error
		after, err = e.servedSerial(addr)
		return err == nil && after.Cmp(before) != 0, err
	})
	if err != nil {
		t.Fatalf("%v (still serving serial %s)", err, before)
	}
	served := time.Now()
	if after.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("the proxy serves serial %s, the renewed Secret holds %s", after, leaf.SerialNumber)
	}
	// A few scrapes on the new certificate before counting.
	time.Sleep(3 * time.Second)
	window := time.Since(start)
	figure(t, "rotation: renewal triggered → Secret re-issued", "%s", issued.Sub(start).Round(10*time.Millisecond))
	figure(t, "rotation: Secret re-issued → served by the proxy (kubelet volume update + reload)", "%s", served.Sub(issued).Round(10*time.Millisecond))

	s := allowed()
	jobs, _ := jobsOf(s)
	seconds := int(math.Ceil(window.Seconds())) + 1
	series, scrapes, failures, err := e.proms[s.name].upSamples(ctx, fmt.Sprintf(`up{job=~%q}`, jobs), seconds)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		t.Errorf("a failed scrape during the rotation: %s", f)
	}
	failed := len(failures)
	if minimum := series * (seconds / 2); series == 0 || scrapes < minimum {
		t.Errorf("%d scrapes of %d series in the %ds window, want at least %d", scrapes, series, seconds, minimum)
	}
	figure(t, "rotation: Prometheus' scrapes in the window (all jobs and Pods), failed", "%d in %ds, %d failed; serial %x → %x", scrapes, seconds, failed, before, after)
	n, bad, first := fresh.stop()
	if n < 10 || bad > 0 {
		t.Errorf("new-handshake scrapes of %s during the rotation: %d, %d failed (first: %v)", addr, n, bad, first)
	}
	figure(t, "rotation: new-handshake scrapes from the host (client certificate), failed", "%d, %d failed", n, bad)
}

// freshScraper scrapes one address with a new TLS connection each time until stopped.
type freshScraper struct {
	client       *http.Client
	done         chan struct{}
	wg           sync.WaitGroup
	once         sync.Once
	n, failed    int
	firstFailure error
}

// freshScraper presents Prometheus' client certificate, read from its Secret.
func (e *env) freshScraper(t *testing.T) *freshScraper {
	secret, err := cp.Clientset.CoreV1().Secrets(monitoringNS).Get(t.Context(), clientCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.tlsConfig()
	cfg.Certificates = []tls.Certificate{pair}
	f := &freshScraper{done: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}}
	f.wg.Add(1)
	return f
}

func (f *freshScraper) run(addr string) {
	defer f.wg.Done()
	for {
		select {
		case <-f.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
		err := f.scrape("https://" + addr + "/metrics")
		f.n++
		if err != nil {
			f.failed++
			if f.firstFailure == nil {
				f.firstFailure = err
			}
		}
	}
}

func (f *freshScraper) scrape(url string) error {
	res, body, err := fetch(context.Background(), f.client, url)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "DCGM_FI_") {
		return fmt.Errorf("%s: %.80s", res.Status, body)
	}
	return nil
}

// stop ends the scrapes and returns how many there were, how many failed and the first failure.
func (f *freshScraper) stop() (int, int, error) {
	f.once.Do(func() { close(f.done); f.wg.Wait() })
	return f.n, f.failed, f.firstFailure
}

// tlsSecretOf is the Secret the Pod's proxy serves from.
func tlsSecretOf(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name == inject.TLSVolume && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	return ""
}

// certificateFor is the name of the Certificate that writes the Secret.
func certificateFor(ctx context.Context, ns, secret string) (string, error) {
	list := &cmv1.CertificateList{}
	if err := cp.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return "", err
	}
	for _, c := range list.Items {
		if c.Spec.SecretName == secret {
			return c.Name, nil
		}
	}
	return "", fmt.Errorf("no Certificate in %s writes Secret %s", ns, secret)
}
