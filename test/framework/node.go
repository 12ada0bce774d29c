package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ErrNoNode is wrapped by Start's error when this machine cannot run a real
// node at all (not root, containerd or a CNI plugin missing, cgroups not
// writable): the reason is in the error, nothing falls back.
var ErrNoNode = errors.New("this machine cannot run a real node")

// NodeOptions asks Start for a real node beside the control plane: containerd
// and a kubelet on this machine, running real Pods.
type NodeOptions struct {
	// Images are docker-archive tarballs imported into containerd before the
	// kubelet starts. Pods use them with imagePullPolicy Never or
	// IfNotPresent: nothing can be pulled.
	Images []string
	// SandboxImage is the reference of the pause image containerd runs every
	// Pod's sandbox from (its sandbox_image); one of Images must hold it.
	SandboxImage string
	// Name is the Node's name; default DefaultNodeName.
	Name string
}

// DefaultNodeName is the Node's name unless NodeOptions.Name says otherwise.
const DefaultNodeName = "rbac-proxy-node"

// Node is the real node Start added to the control plane: containerd and a
// kubelet in a private mount namespace, on the bridge BridgeName.
type Node struct {
	// Name is the Node object's name.
	Name string
	// Dir holds the node's configuration, state and logs.
	Dir string
	// IP is the node's InternalIP, the bridge's host address, where the API
	// server and the kubelet listen too.
	IP string

	opts   NodeOptions
	tools  nodeTools
	pki    nodePKI
	before hostSnapshot
	unlock func()
	ns     *mountNamespace
	procs  []*process // containerd, kubelet: their logs go into DumpLogs
	socket string     // containerd's gRPC socket
	// bridgeCreated: the bridge is this node's to remove.
	bridgeCreated bool
	// Figures: Start → Node Ready (and the kubelet's part), the last teardown.
	started, kubeletStarted, ready time.Time
	teardownTook                   time.Duration
}

// StartTook is how long the node took from Start (holding the node lock) to
// Ready: bridge, control plane, containerd, the images, the kubelet.
func (n *Node) StartTook() time.Duration { return n.ready.Sub(n.started) }

// KubeletTook is the kubelet's part of StartTook: its start → Node Ready.
func (n *Node) KubeletTook() time.Duration { return n.ready.Sub(n.kubeletStarted) }

// newNode checks the machine and takes the one-node-per-machine lock; the node
// gets its folder under the control plane's.
func newNode(ctx context.Context, cpDir, bin string, opts NodeOptions) (*Node, error) {
	if opts.Name == "" {
		opts.Name = DefaultNodeName
	}
	if opts.SandboxImage == "" {
		return nil, errors.New("NodeOptions.SandboxImage is empty: containerd needs the pause image's reference")
	}
	n := &Node{Name: opts.Name, Dir: filepath.Join(cpDir, "node"), IP: BridgeAddress, opts: opts}
	tools, err := preflight(bin, n.Dir)
	if err != nil {
		return nil, err
	}
	n.tools = tools
	if n.unlock, err = lockNode(ctx); err != nil {
		return nil, err
	}
	// The start is timed from here: waiting for another node is not part of it.
	n.started = time.Now()
	// From here on a failure leaves things to remove: the caller stops n.
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return n, fmt.Errorf("creating the node's folder: %w", err)
	}
	if err := n.removeStaleNode(); err != nil {
		return n, err
	}
	if err := checkNoLeftovers(); err != nil {
		return n, err
	}
	if n.before, err = snapshotHost(); err != nil {
		return n, err
	}
	if err := n.pki.create(n.Dir, n.Name, n.IP); err != nil {
		return n, err
	}
	return n, nil
}

// start runs the node's runtime and kubelet and waits for the Node to be
// Ready; the bridge and the API server already run.
func (n *Node) start(ctx context.Context, cp *ControlPlane) error {
	if err := n.writeCNIConfig(); err != nil {
		return err
	}
	ns, err := startMountNamespace(n.Dir, n.tools)
	if err != nil {
		return err
	}
	n.ns = ns
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	for _, img := range n.opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	n.kubeletStarted = time.Now()
	if err := n.startKubelet(ctx, cp); err != nil {
		return err
	}
	if err := n.waitReady(ctx, cp); err != nil {
		return err
	}
	n.ready = time.Now()
	return nil
}

// ImportImage imports a docker-archive tarball into containerd's k8s.io
// namespace, where the kubelet's CRI looks for images.
func (n *Node) ImportImage(ctx context.Context, tarball string) error {
	if _, err := n.ctr(ctx, "images", "import", tarball); err != nil {
		return fmt.Errorf("importing image %s into containerd: %w", tarball, err)
	}
	return nil
}

// ctr runs containerd's own client against this node's containerd.
func (n *Node) ctr(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.tools.ctr, append([]string{"--address", n.socket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// procOf is the node's program name (containerd, kubelet), nil before it started.
func (n *Node) procOf(name string) *process {
	for _, p := range n.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// dumpLogs writes the tail of containerd's and the kubelet's logs to w.
func (n *Node) dumpLogs(w io.Writer, tail int64) {
	for _, p := range n.procs {
		fmt.Fprintf(w, "===== node %s (last %d bytes) =====\n%s\n", p.name, tail, p.tail(tail))
	}
}
