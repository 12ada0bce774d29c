package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// containerdConfig is containerd's whole configuration: every path under the
// node's folder, the CRI plugin as the kubelet needs it on this kind of
// machine. restrict_oom_score_adj is required where the bounding set lacks
// CAP_SYS_RESOURCE (the sandbox asks for -998 and runc fails with "can't get
// final child's PID from pipe"); disable_apparmor because no profile is loaded.
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 2
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{.Socket}}"

[ttrpc]
  address = "{{.Socket}}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.SandboxImage}}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBinDir}}"
    conf_dir = "{{.CNIConfDir}}"
`))

// startContainerd writes containerd's configuration and runs it in the
// node's mount namespace until its CRI answers.
func (n *Node) startContainerd(ctx context.Context) error {
	n.socket = filepath.Join(n.Dir, "containerd.sock")
	var b strings.Builder
	err := containerdConfig.Execute(&b, map[string]string{
		"Dir":          n.Dir,
		"Socket":       n.socket,
		"SandboxImage": n.opts.SandboxImage,
		"CNIBinDir":    CNIPluginDir,
		"CNIConfDir":   n.cniDir(),
	})
	if err != nil {
		return fmt.Errorf("rendering containerd's configuration: %w", err)
	}
	config := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing containerd's configuration: %w", err)
	}
	p, err := n.startInNamespace("containerd", n.tools.containerd, "--config", config)
	if err != nil {
		return err
	}
	err = waitFor(ctx, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		if done, err := p.exited(); done {
			return false, fmt.Errorf("containerd exited: %v", err)
		}
		// The CRI plugin loads after the socket opens; its status is what the
		// kubelet will ask for.
		out, err := n.ctr(ctx, "plugins", "ls", "id==cri")
		return err == nil && strings.Contains(out, " ok"), err
	})
	if err != nil {
		return fmt.Errorf("waiting for containerd's CRI plugin: %w", err)
	}
	return nil
}

// startInNamespace runs a node program inside the node's mount namespace,
// logging to Dir/<name>.log; its log goes into DumpLogs.
func (n *Node) startInNamespace(name, path string, args ...string) (*process, error) {
	log, err := os.Create(filepath.Join(n.Dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	p, err := startCommand(name, log, n.ns.command(path, args...), (*exec.Cmd).Start)
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	return p, nil
}
