package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkPodToSecret measures, one Pod at a time, how long a bare injected Pod waits for its
// proxy's serving certificate: from the Pod's create call (admission included) until cert-manager
// has written the Secret the proxy mounts. The Certificate is the injector's part of that path;
// cert-manager's issuance is the rest, the same for every injector version.
func BenchmarkPodToSecret(b *testing.B) {
	setup(b)
	ctx := context.Background()
	issuer := &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}
	if err := env.cp.Client.Create(ctx, issuer); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	// The poll must not wait on client-go's default 5 requests/s: that alone is 200 ms a poll.
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: env.cp.Client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	durations := make([]time.Duration, 0, b.N)
	certs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pod := benchPod(env.labelled, nil)
		pod.GenerateName, pod.Name = "", fmt.Sprintf("secret-%d-%d", time.Now().UnixNano(), i)
		secret := "rbac-proxy-pod-" + pod.Name
		t0 := time.Now()
		if err := c.Create(ctx, pod); err != nil {
			b.Fatal(err)
		}
		cert, err := waitSecret(ctx, c, env.labelled, secret)
		if err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(t0))
		certs = append(certs, cert.Sub(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(durations, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(durations, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(certs, 0.50).Microseconds())/1000, "cert-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// waitSecret polls every 10 ms, finer than the figures it measures, for a minute at most, and
// returns when the Certificate was first seen (the injector's part; the rest is cert-manager's).
func waitSecret(ctx context.Context, c client.Client, ns, name string) (time.Time, error) {
	var certSeen time.Time
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if certSeen.IsZero() {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cmapi.Certificate{}); err == nil {
				certSeen = time.Now()
			}
		}
		s := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
		if err == nil && len(s.Data[corev1.TLSCertKey]) > 0 {
			if certSeen.IsZero() {
				certSeen = time.Now()
			}
			return certSeen, nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return certSeen, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return certSeen, fmt.Errorf("Secret %s/%s did not appear within a minute", ns, name)
}
