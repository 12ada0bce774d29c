// Package story is rbac-proxy's user story as a library: start a control plane
// with cert-manager, install the chart, deploy a GPU exporter into a labelled
// namespace, run the proxy exactly as the webhook injected it, and scrape it
// as Prometheus and as strangers would. `make demo` prints it; the end-to-end
// test in test/e2e/story asserts it and goes on from where it stops.
package story

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// Options says where the story is told and what it may reuse.
type Options struct {
	// Out receives progress lines, the injected Pod and the summary; nil discards them.
	Out io.Writer
	// ControlPlane, when set, is used instead of starting one (and is not stopped).
	// It must run kube-controller-manager and cert-manager.
	ControlPlane *framework.ControlPlane
	// KeepRunning leaves everything running when Run returns without error; the
	// caller stops it with Report.Env.Stop. Without it Run stops everything.
	KeepRunning bool
	// Node runs the exporters as real Pods on a real node (containerd and a
	// kubelet on this machine), the proxy as the native sidecar the webhook
	// injected, scraped at the Pods' IPs. Where the machine cannot run a node
	// the story says why and runs the proxies as local processes instead.
	// Only with a control plane the story starts itself.
	Node bool
}

// Report is what the story found.
type Report struct {
	Checks []Check
	// Env holds the running pieces; only set with Options.KeepRunning.
	Env *Env
}

// Failed returns the checks that did not get what they expected.
func (r *Report) Failed() []Check {
	var failed []Check
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	return failed
}

// Env is the running story: the control plane, the namespace and the two proxies.
type Env struct {
	CP        *framework.ControlPlane
	Injector  *framework.Injector
	Namespace string
	// SAR is dcgm-exporter's proxy (authz: sar, bearer tokens).
	SAR *Proxy
	// Static is dcgm-exporter-mtls's proxy (authz: static, client certificates).
	Static *Proxy
	// PrometheusToken is a token of the ServiceAccount allowed to get /metrics.
	PrometheusToken string
	// Dir holds the proxies' files and logs.
	Dir string

	proxyBin    string
	injectorBin string
	// exporterImage is the sample exporter's image when the exporters run
	// as real Pods; empty when the proxies run as local processes.
	exporterImage string
	ownCP         bool
	stops         []func() error
	stopped       bool
}

// Run tells the story. The error is for a step that could not be done at all;
// a check that got something unexpected is reported in Report.Checks.
func Run(ctx context.Context, opts Options) (report *Report, err error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	s := &teller{out: out, start: time.Now()}
	dir, err := os.MkdirTemp("", "rbac-proxy-story-")
	if err != nil {
		return nil, err
	}
	env := &Env{CP: opts.ControlPlane, Dir: dir}
	env.onStop(func() error { return os.RemoveAll(dir) })
	report = &Report{}
	defer func() {
		if err != nil && env.CP != nil && ctx.Err() == nil {
			env.CP.DumpLogs(out)
		}
		if err != nil || !opts.KeepRunning {
			s.progress("stopping everything")
			if serr := env.Stop(); serr != nil {
				err = errors.Join(err, serr)
			}
			return
		}
		report.Env = env
	}()

	if env.CP == nil {
		if err := startControlPlane(ctx, s, env, opts.Node); err != nil {
			return report, err
		}
	}
	if err := installChart(ctx, s, env); err != nil {
		return report, err
	}
	w, err := deployExporters(ctx, s, env)
	if err != nil {
		return report, err
	}
	report.Checks = append(report.Checks, w.checks...)
	if env.onNode() {
		var checks []Check
		checks, err = waitForPods(ctx, s, env, w)
		report.Checks = append(report.Checks, checks...)
	} else {
		err = runProxies(ctx, s, env, w)
	}
	if err != nil {
		return report, err
	}
	checks, err := scrape(ctx, s, env)
	if err != nil {
		return report, err
	}
	report.Checks = append(report.Checks, checks...)
	if checks, err = checkCluster(ctx, s, env); err != nil {
		return report, err
	}
	report.Checks = append(report.Checks, checks...)
	printSummary(out, report.Checks, time.Since(s.start))
	return report, nil
}

// onNode reports whether the exporters run as real Pods.
func (e *Env) onNode() bool { return e.exporterImage != "" }

// onStop registers f to run on Stop, in reverse order of registration.
func (e *Env) onStop(f func() error) { e.stops = append(e.stops, f) }

// Stop stops the proxies, the sample exporters and, when the story started
// it, the control plane, and removes the story's files. It is safe to call twice.
func (e *Env) Stop() error {
	if e.stopped {
		return nil
	}
	e.stopped = true
	var errs []error
	for i := len(e.stops) - 1; i >= 0; i-- {
		errs = append(errs, e.stops[i]())
	}
	return errors.Join(errs...)
}

// teller prints progress lines with the time since the start.
type teller struct {
	out   io.Writer
	start time.Time
}

func (s *teller) progress(format string, args ...any) {
	fmt.Fprintf(s.out, "[%5.1fs] %s…\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

func (s *teller) printf(format string, args ...any) { fmt.Fprintf(s.out, format, args...) }
