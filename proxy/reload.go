package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	certutil "k8s.io/client-go/util/cert"
)

// watchedFiles is a set of files parsed together whenever their content
// changes. Files are re-read by polling: this follows the kubelet's atomic
// "..data" symlink swap of Secret and ConfigMap volumes, which file
// notifications on the visible path miss.
type watchedFiles struct {
	name  string // serving, client-ca (for logs and metrics)
	paths []string
	// apply parses and installs new content; on error the old content stays.
	apply func(contents [][]byte) error
	last  [][]byte
}

// refresh re-reads the files and applies them if any changed.
func (w *watchedFiles) refresh() (changed bool, err error) {
	contents := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", p, err)
		}
		contents[i] = b
	}
	if w.last != nil {
		same := true
		for i := range contents {
			same = same && bytes.Equal(contents[i], w.last[i])
		}
		if same {
			return false, nil
		}
	}
	if err := w.apply(contents); err != nil {
		return false, err
	}
	w.last = contents
	return true, nil
}

// servingCert holds the current serving certificate.
type servingCert struct {
	cert atomic.Pointer[tls.Certificate]
}

func (s *servingCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.cert.Load()
	if c == nil {
		return nil, errors.New("no serving certificate loaded")
	}
	return c, nil
}

func (s *servingCert) watch(certFile, keyFile string) *watchedFiles {
	return &watchedFiles{
		name:  "serving",
		paths: []string{certFile, keyFile},
		apply: func(c [][]byte) error {
			cert, err := tls.X509KeyPair(c[0], c[1])
			if err != nil {
				return fmt.Errorf("loading --tls-cert-file %s and --tls-private-key-file %s: %w", certFile, keyFile, err)
			}
			s.cert.Store(&cert)
			return nil
		},
	}
}

// selfSigned installs a generated self-signed certificate for host.
func (s *servingCert) selfSigned(host string) error {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		return fmt.Errorf("generating a self-signed serving certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("loading the self-signed serving certificate: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

// clientCA holds the current client CA pool.
type clientCA struct {
	pool atomic.Pointer[x509.CertPool]
}

func (c *clientCA) watch(file string) *watchedFiles {
	return &watchedFiles{
		name:  "client-ca",
		paths: []string{file},
		apply: func(b [][]byte) error {
			certs, err := certutil.ParseCertsPEM(b[0])
			if err != nil {
				return fmt.Errorf("loading --client-ca-file %s: %w", file, err)
			}
			pool := x509.NewCertPool()
			for _, cert := range certs {
				pool.AddCert(cert)
			}
			c.pool.Store(pool)
			return nil
		},
	}
}

// reloader polls watched files until the context ends.
type reloader struct {
	files    []*watchedFiles
	interval time.Duration
	log      logr.Logger
	metrics  *metrics
}

// loadAll loads every file once; any error is fatal at start.
func (r *reloader) loadAll() error {
	for _, f := range r.files {
		if _, err := f.refresh(); err != nil {
			return err
		}
	}
	return nil
}

// add loads w now, failing as loadAll does, and keeps it reloaded.
func (r *reloader) add(w *watchedFiles) error {
	if _, err := w.refresh(); err != nil {
		return err
	}
	r.files = append(r.files, w)
	return nil
}

func (r *reloader) run(ctx context.Context) {
	if len(r.files) == 0 {
		return
	}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range r.files {
			changed, err := f.refresh()
			switch {
			case err != nil:
				// A half-written update (new certificate, old key) lands
				// here; the next tick picks up the complete one.
				r.metrics.certReloads.WithLabelValues(f.name, "error").Inc()
				r.log.V(1).Info("keeping the previous certificate", "file", f.name, "reason", err.Error())
			case changed:
				r.metrics.certReloads.WithLabelValues(f.name, "success").Inc()
				r.log.Info("reloaded from disk", "file", f.name)
			}
		}
	}
}
