package realnode

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// testRestart kills each exporter's proxy (SIGKILL to its processes, found by the container's
// cgroup): the kubelet restarts the sidecar alone, the app keeps its container and start time,
// and Prometheus gets in again. In redirect mode the rules outlive the proxy: they are the Pod's
// network namespace's.
func testRestart(t *testing.T, e *env) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			ctx := t.Context()
			pod, err := e.refresh(ctx, w.name)
			if err != nil {
				t.Fatal(err)
			}
			proxy, app := *containerStatus(pod, inject.ContainerName), *containerStatus(pod, exporterContainer)
			if app.State.Running == nil {
				t.Fatalf("the app is not running: %s", framework.DescribePods([]corev1.Pod{*pod}))
			}
			start := time.Now()
			if err := killContainer(proxy.ContainerID); err != nil {
				t.Fatal(err)
			}
			var restarted, ready time.Duration
			err = framework.Eventually(ctx, 90*time.Second, "the kubelet to restart the sidecar", func(ctx context.Context) (bool, error) {
				var err error
				if pod, err = e.refresh(ctx, w.name); err != nil {
					return false, err
				}
				st := containerStatus(pod, inject.ContainerName)
				if st.RestartCount <= proxy.RestartCount || st.State.Running == nil {
					return false, nil
				}
				if restarted == 0 {
					restarted = time.Since(start)
				}
				if !st.Ready {
					return false, nil
				}
				ready = time.Since(start)
				return true, nil
			})
			if err != nil {
				t.Fatalf("%v: %s", err, framework.DescribePods([]corev1.Pod{*pod}))
			}
			st := containerStatus(pod, inject.ContainerName)
			if st.RestartCount != proxy.RestartCount+1 || st.ContainerID == proxy.ContainerID {
				t.Errorf("the sidecar: restartCount %d → %d, container %s → %s; want one restart in a new container", proxy.RestartCount, st.RestartCount, proxy.ContainerID, st.ContainerID)
			}
			now := containerStatus(pod, exporterContainer)
			if now.RestartCount != 0 || now.ContainerID != app.ContainerID || now.State.Running == nil || !now.State.Running.StartedAt.Equal(&app.State.Running.StartedAt) {
				t.Errorf("the app was touched: restartCount %d, container %s → %s, started %v → %v", now.RestartCount, app.ContainerID, now.ContainerID, app.State.Running.StartedAt, now.State.Running)
			}

			s := allowed()
			jobs, n := jobsOf(s)
			// A scrape that succeeded after the new sidecar was Ready.
			sel := fmt.Sprintf(`up{job=~%q, workload=%q}`, jobs, w.name)
			expr := fmt.Sprintf(`%s == 1 and timestamp(%s) > %d`, sel, sel, start.Add(ready).Unix())
			err = framework.Eventually(ctx, 60*time.Second, "Prometheus to get in again", func(ctx context.Context) (bool, error) {
				up, err := e.proms[s.name].query(ctx, expr)
				return err == nil && len(up) == n, err
			})
			if err != nil {
				t.Error(err)
			}
			// What Prometheus saw meanwhile: the scrapes that found no proxy.
			seconds := int(time.Since(start).Seconds()) + 1
			_, scrapes, failures, err := e.proms[s.name].upSamples(ctx, sel, seconds)
			if err != nil {
				t.Fatal(err)
			}
			failed := len(failures)
			figure(t, fmt.Sprintf("restart (%s): sidecar killed → running again, → Ready", w.mode), "%s, %s; app restartCount %d, same container; %d of %d scrapes failed meanwhile",
				restarted.Round(10*time.Millisecond), ready.Round(10*time.Millisecond), now.RestartCount, failed, scrapes)
		})
	}
}
