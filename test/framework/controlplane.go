package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options says which components run beside etcd and kube-apiserver.
type Options struct {
	// ControllerManager runs kube-controller-manager with all its default
	// controllers, so Deployments get ReplicaSets and Pods, ServiceAccounts
	// get created and owned objects are garbage-collected.
	ControllerManager bool
	// CertManager installs cert-manager's CRDs and runs its controllers
	// (certificates, the self-signed and CA issuers, the approver, cainjector).
	CertManager bool
	// CertManagerOwnerRef runs cert-manager with --enable-certificate-owner-ref:
	// a Certificate owns its Secret, so deleting a workload that owns the
	// Certificate removes the Secret too. Off by default, as upstream.
	CertManagerOwnerRef bool
	// APIServerArgs are extra kube-apiserver flags, name without dashes.
	APIServerArgs map[string][]string
	// Node adds a real node (containerd and a kubelet on this machine) and
	// runs kube-scheduler; it turns ControllerManager on. The API server then
	// listens on BridgeAddress:APIServerPort. Nil: no node.
	Node *NodeOptions
	// StartTimeout bounds the whole start; default 3 minutes (5 with a
	// node), not counting the wait for another node on this machine to stop.
	StartTimeout time.Duration
}

// ControlPlane is a running control plane and the clients to talk to it as
// cluster admin.
type ControlPlane struct {
	Config         *rest.Config
	Client         client.Client
	Clientset      kubernetes.Interface
	KubeconfigPath string
	// CAFile holds the CA that signed the API server's serving certificate.
	CAFile string
	// Dir holds the kubeconfig, the CA and each component's log.
	Dir string
	// Node is the real node Options.Node asked for, else nil.
	Node *Node

	stopMu            sync.Mutex
	stopped           bool
	env               *envtest.Environment
	controllerManager bool
	envLogs           []string
	components        []*process
}

// CertManagerNamespace is where cert-manager keeps ClusterIssuer secrets.
const CertManagerNamespace = "cert-manager"

// Start starts a control plane as opts asks, and returns when every component
// answers. On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
		if opts.Node != nil {
			opts.StartTimeout = 5 * time.Minute
		}
	}
	if opts.Node != nil {
		// The kubelet's Pods need their ServiceAccounts and kube-root-ca.crt.
		opts.ControllerManager = true
	}

	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := binary(bin, name); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "rbac-proxy-controlplane-")
	if err != nil {
		return nil, fmt.Errorf("creating the control plane's folder: %w", err)
	}
	cp = &ControlPlane{Dir: dir, controllerManager: opts.ControllerManager}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "control plane failed to start: %v\n", err)
			cp.DumpLogs(os.Stderr)
			if stopErr := cp.Stop(); stopErr != nil {
				fmt.Fprintf(os.Stderr, "stopping what had started: %v\n", stopErr)
			}
		}
	}()
	if opts.Node != nil {
		// Waiting for another node on this machine is not part of the start.
		lockCtx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		cp.Node, err = newNode(lockCtx, dir, bin, *opts.Node)
		cancel()
		if err != nil {
			return cp, err
		}
		// The API server listens on the bridge: it comes first.
		if err := cp.Node.createBridge(); err != nil {
			return cp, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	env, err := cp.newEnvironment(bin, opts)
	if err != nil {
		return cp, err
	}
	cp.env = env
	if _, err := env.Start(); err != nil {
		return cp, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	if err := cp.connectAsAdmin(); err != nil {
		return cp, err
	}
	if opts.ControllerManager {
		if err := cp.startControllerManager(ctx, bin); err != nil {
			return cp, err
		}
	}
	if opts.CertManager {
		if err := cp.startCertManager(ctx, bin, opts.CertManagerOwnerRef); err != nil {
			return cp, err
		}
	}
	if cp.Node != nil {
		if err := cp.startScheduler(ctx, bin); err != nil {
			return cp, err
		}
		if err := cp.Node.start(ctx, cp); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) newEnvironment(bin string, opts Options) (*envtest.Environment, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		Scheme:                   NewScheme(),
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if opts.CertManager {
		crds := filepath.Join(bin, "cert-manager-crds")
		env.CRDInstallOptions = envtest.CRDInstallOptions{Paths: []string{crds}, ErrorIfPathMissing: true}
	}
	apiLog, err := cp.logFile("kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcdLog, err := cp.logFile("etcd")
	if err != nil {
		return nil, err
	}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	if opts.ControllerManager {
		// envtest turns the ServiceAccount admission plugin off because nothing
		// would create the default ServiceAccounts; kube-controller-manager
		// does, so admit Pods exactly as a real cluster would (serviceAccountName
		// defaulted, the token volume mounted before webhooks run).
		api.Configure().Disable("disable-admission-plugins")
	}
	if cp.Node != nil {
		// The serving certificate then names BridgeAddress too, which is
		// what Pods' in-cluster config dials (the kubernetes Service's IP).
		api.SecureServing.ListenAddr = envtest.ListenAddr{Address: BridgeAddress, Port: strconv.Itoa(APIServerPort)}
		for name, values := range cp.Node.apiServerArgs() {
			api.Configure().Set(name, values...)
		}
	}
	for name, values := range opts.APIServerArgs {
		api.Configure().Set(name, values...)
	}
	return env, nil
}

// logFile opens Dir/<name>.log and remembers it for DumpLogs.
func (cp *ControlPlane) logFile(name string) (io.Writer, error) {
	p := filepath.Join(cp.Dir, name+".log")
	f, err := os.Create(p)
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	cp.envLogs = append(cp.envLogs, p)
	return f, nil
}

// connectAsAdmin writes an admin kubeconfig and builds the clients.
func (cp *ControlPlane) connectAsAdmin() error {
	admin, err := cp.env.AddUser(envtest.User{Name: "rbac-proxy-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	cp.KubeconfigPath = filepath.Join(cp.Dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	cp.CAFile = filepath.Join(cp.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(cp.CAFile, cp.env.ControlPlane.APIServer.SecureServing.CA, 0o600); err != nil {
		return fmt.Errorf("writing the API server CA: %w", err)
	}
	cp.Config = admin.Config()
	if cp.Clientset, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return fmt.Errorf("building the admin clientset: %w", err)
	}
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.env.Scheme}); err != nil {
		return fmt.Errorf("building the admin client: %w", err)
	}
	return nil
}

// startControllerManager runs kube-controller-manager and waits until its
// service-account controller has created the default ServiceAccount.
func (cp *ControlPlane) startControllerManager(ctx context.Context, bin string) error {
	path, err := binary(bin, "kube-controller-manager")
	if err != nil {
		return err
	}
	saKey := filepath.Join(cp.env.ControlPlane.APIServer.CertDir, "sa-signer.key")
	p, err := startProcess(cp.Dir, "kube-controller-manager", path,
		"--kubeconfig="+cp.KubeconfigPath,
		"--authentication-kubeconfig="+cp.KubeconfigPath,
		"--authorization-kubeconfig="+cp.KubeconfigPath,
		"--controllers=*",
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+cp.CAFile,
		"--use-service-account-credentials=false",
		"--cluster-name=rbac-proxy-test",
	)
	if err != nil {
		return err
	}
	cp.components = append(cp.components, p)
	err = waitFor(ctx, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		if done, err := p.exited(); done {
			return false, fmt.Errorf("kube-controller-manager exited: %v", err)
		}
		_, err := cp.Clientset.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-controller-manager to create the default ServiceAccount: %w", err)
	}
	return nil
}

// startCertManager runs the cert-manager controller; its CRDs were installed
// by envtest before.
func (cp *ControlPlane) startCertManager(ctx context.Context, bin string, ownerRef bool) error {
	path, err := binary(bin, "cert-manager-controller")
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CertManagerNamespace}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", CertManagerNamespace, err)
	}
	p, err := startProcess(cp.Dir, "cert-manager", path,
		"--kubeconfig="+cp.KubeconfigPath,
		"--cluster-resource-namespace="+CertManagerNamespace,
		fmt.Sprintf("--enable-certificate-owner-ref=%t", ownerRef),
	)
	if err != nil {
		return err
	}
	cp.components = append(cp.components, p)
	// Its start-up (informer sync, CRD discovery) takes a moment.
	return p.survives(ctx, 2*time.Second)
}

// Stop stops every component in reverse order of start. A node is torn down
// after the controllers (none recreates its Pods then) and before the API
// server, which its kubelet needs to remove them; its bridge goes last.
// Stop may be called again (a test that checks the teardown, then Main): the
// second call does nothing.
func (cp *ControlPlane) Stop() error {
	cp.stopMu.Lock()
	defer cp.stopMu.Unlock()
	if cp.stopped {
		return nil
	}
	cp.stopped = true
	var errs []error
	for i := len(cp.components) - 1; i >= 0; i-- {
		errs = append(errs, cp.components[i].stop(20*time.Second))
	}
	cp.components = nil
	if cp.Node != nil {
		if err := cp.Node.stop(cp.Clientset); err != nil {
			errs = append(errs, fmt.Errorf("tearing the node down: %w", err))
		}
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
		cp.env = nil
	}
	if cp.Node != nil {
		errs = append(errs, cp.Node.removeNetwork())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if os.Getenv("RBAC_PROXY_KEEP_LOGS") == "" {
		return os.RemoveAll(cp.Dir)
	}
	return nil
}

// DumpLogs writes the tail of each component's log to w.
func (cp *ControlPlane) DumpLogs(w io.Writer) {
	const tail = 6000
	for _, p := range cp.envLogs {
		fmt.Fprintf(w, "===== %s (last %d bytes) =====\n%s\n", filepath.Base(p), tail, tailFile(p, tail))
	}
	for _, p := range cp.components {
		fmt.Fprintf(w, "===== %s (last %d bytes) =====\n%s\n", p.name, tail, p.tail(tail))
	}
	if cp.Node != nil {
		cp.Node.dumpLogs(w, tail)
	}
}
