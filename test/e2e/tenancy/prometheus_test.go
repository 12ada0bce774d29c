package tenancy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
)

// prometheusBin is Debian's Prometheus (make test-deps installs it on CI). Debian builds it
// without kubernetes_sd_configs: the scrape targets are static_configs.
const prometheusBin = "/usr/bin/prometheus"

const (
	// scrapeInterval is short so that the measured window holds many scrapes; the timeout is
	// the interval, as Prometheus requires it no longer.
	scrapeInterval = time.Second
	// prometheusStartTimeout bounds the wait for /-/ready.
	prometheusStartTimeout = 60 * time.Second
	// prometheusStartAttempts is how many times a port is chosen before the start gives up.
	prometheusStartAttempts = 3
)

// scrapeTarget is one HTTPS endpoint a Prometheus scrapes with a bearer token.
type scrapeTarget struct {
	// addr is host:port, dialled as is; serverName is the name its certificate is checked for.
	addr, serverName string
	// caFile verifies the serving certificate; tokenFile holds the bearer token.
	caFile, tokenFile string
}

// scrapeJob is the one job each test Prometheus runs.
const scrapeJob = "dcgm-exporter"

// prometheusConfig renders the prometheus.yml of a Prometheus that scrapes t every
// scrapeInterval as job scrapeJob. It is JSON, which is YAML too.
func prometheusConfig(t scrapeTarget) ([]byte, error) {
	interval := model.Duration(scrapeInterval).String()
	return json.MarshalIndent(map[string]any{
		"global": map[string]any{"scrape_interval": interval, "scrape_timeout": interval},
		"scrape_configs": []any{map[string]any{
			"job_name":       scrapeJob,
			"scheme":         "https",
			"authorization":  map[string]any{"credentials_file": t.tokenFile},
			"tls_config":     map[string]any{"ca_file": t.caFile, "server_name": t.serverName},
			"static_configs": []any{map[string]any{"targets": []string{t.addr}}},
		}},
	}, "", "  ")
}

// prometheus is a Prometheus server running as a child of the test on 127.0.0.1, with its
// TSDB in a folder of the test's.
type prometheus struct {
	name    string
	url     string
	api     promv1.API
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startPrometheus runs Prometheus called name scraping target until t ends, and waits until
// it is ready. A port another process takes before Prometheus binds it is chosen again.
func startPrometheus(t *testing.T, name string, target scrapeTarget) *prometheus {
	t.Helper()
	dir := t.TempDir()
	conf, err := prometheusConfig(target)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		p, err := startPrometheusOnce(t.Context(), name, confPath, dir, attempt)
		if err == nil {
			t.Cleanup(func() {
				if err := p.stop(); err != nil {
					t.Errorf("stopping %s: %v", name, err)
				}
				if t.Failed() {
					t.Logf("%s's log (tail):\n%s", name, p.logTail())
				}
			})
			return p
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == prometheusStartAttempts {
			t.Fatalf("starting %s: %v", name, err)
		}
	}
}

func startPrometheusOnce(ctx context.Context, name, confPath, dir string, attempt int) (*prometheus, error) {
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &prometheus{name: name, url: "http://" + addr, logPath: filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt)), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command(prometheusBin,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--web.listen-address="+addr,
	)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", prometheusBin, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	client, err := promapi.NewClient(promapi.Config{Address: p.url, Client: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		_ = p.stop()
		return nil, err
	}
	p.api = promv1.NewAPI(client)
	if err := p.waitReady(ctx); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls /-/ready; Prometheus exiting ends the wait at once with its log.
func (p *prometheus) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, prometheusStartTimeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("prometheus exited: %v\n%s", p.waitErr, p.log())
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/-/ready", nil)
		if err != nil {
			return err
		}
		if res, err := c.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready on %s after %s\n%s", p.url, prometheusStartTimeout, p.log())
		case <-p.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for Prometheus to exit, killing it after 20s.
func (p *prometheus) stop() error {
	select {
	case <-p.exited:
		return nil // it had exited already; waitReady reported why
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("did not exit within 20s of SIGTERM; killed")
	}
}

// logTail is the last lines of Prometheus' log: start-up is alike in every one.
func (p *prometheus) logTail() string {
	lines := strings.Split(strings.TrimSuffix(p.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-logTailLines):], "\n")
}

// logTailLines is how much of Prometheus' log a failed test shows.
const logTailLines = 15

func (p *prometheus) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// target is Prometheus' view of its one target.
func (p *prometheus) target(ctx context.Context) (promv1.ActiveTarget, error) {
	res, err := p.api.Targets(ctx)
	if err != nil {
		return promv1.ActiveTarget{}, err
	}
	if len(res.Active) != 1 {
		return promv1.ActiveTarget{}, fmt.Errorf("%d active targets, want 1", len(res.Active))
	}
	return res.Active[0], nil
}

// vector runs an instant query whose result is an instant vector.
func (p *prometheus) vector(ctx context.Context, query string) (model.Vector, error) {
	v, _, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: query %s: %w", p.name, query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: query %s: a %s, not a vector", p.name, query, v.Type())
	}
	return vec, nil
}
