package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

// KubeletPort is where the kubelet serves (logs, exec, port-forward) on the
// node's IP.
const KubeletPort = 10250

// nodePKI is the node's side of TLS: a CA that signs the kubelet's serving
// certificate (the API server verifies it) and the API server's client
// certificate to the kubelet (the kubelet authenticates it).
type nodePKI struct {
	caFile                   string
	servingCert, servingKey  string
	apiClientCert, apiClient string // the API server's --kubelet-client-certificate and key
}

func (p *nodePKI) create(dir, name, ip string) error {
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return fmt.Errorf("creating the node's pki folder: %w", err)
	}
	ca, err := testpki.NewCA("rbac-proxy-node-ca")
	if err != nil {
		return fmt.Errorf("creating the node's CA: %w", err)
	}
	p.caFile = filepath.Join(pkiDir, "ca.crt")
	if err := os.WriteFile(p.caFile, ca.CertPEM, 0o600); err != nil {
		return err
	}
	serving, err := ca.Server(name, ip)
	if err != nil {
		return fmt.Errorf("issuing the kubelet's serving certificate: %w", err)
	}
	if p.servingCert, p.servingKey, err = serving.Write(pkiDir, "kubelet-serving"); err != nil {
		return err
	}
	// system:masters: the kubelet asks the API server (SubjectAccessReview)
	// whether this client may read logs or exec, and the answer is yes.
	client, err := ca.Client("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		return fmt.Errorf("issuing the API server's kubelet client certificate: %w", err)
	}
	p.apiClientCert, p.apiClient, err = client.Write(pkiDir, "apiserver-kubelet-client")
	return err
}

// apiServerArgs are the kube-apiserver flags a node needs: the Node
// authorizer and NodeRestriction for the kubelet's credentials, and the
// kubelet's address, CA and the client certificate for logs and exec.
func (n *Node) apiServerArgs() map[string][]string {
	return map[string][]string{
		"authorization-mode":              {"Node,RBAC"},
		"enable-admission-plugins":        {"NodeRestriction"},
		"service-cluster-ip-range":        {ServiceCIDR},
		"advertise-address":               {BridgeAddress},
		"kubelet-certificate-authority":   {n.pki.caFile},
		"kubelet-client-certificate":      {n.pki.apiClientCert},
		"kubelet-client-key":              {n.pki.apiClient},
		"kubelet-preferred-address-types": {"InternalIP"},
	}
}

// kubeletConfig is the node's KubeletConfiguration. The required settings on
// this kind of machine: the cgroupfs driver and failCgroupV1 false (cgroup v1
// hosts), failSwapOn false, no iptables chains of its own; everything it
// writes under the node's folder; low eviction thresholds so a busy disk does
// not evict the test's Pods; image GC off, since imported images cannot be
// pulled again; a 5s sync so Secret volume updates reach Pods fast.
func (n *Node) kubeletConfig(clientCAFile string) *kubeletv1beta1.KubeletConfiguration {
	endpoint := "unix://" + n.socket
	resolv := filepath.Join(n.Dir, "resolv.conf")
	return &kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration"},
		Address:  BridgeAddress,
		Port:     KubeletPort,
		// Nothing else listens: no read-only port, no healthz port.
		ReadOnlyPort:      0,
		HealthzPort:       ptr.To[int32](0),
		TLSCertFile:       n.pki.servingCert,
		TLSPrivateKeyFile: n.pki.servingKey,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: clientCAFile},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true)},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		ContainerRuntimeEndpoint: endpoint,
		ImageServiceEndpoint:     endpoint,
		CgroupDriver:             "cgroupfs",
		FailCgroupV1:             ptr.To(false),
		FailSwapOn:               ptr.To(false),
		MakeIPTablesUtilChains:   ptr.To(false),
		PodLogsDir:               filepath.Join(n.Dir, "pod-logs"),
		VolumePluginDir:          filepath.Join(n.Dir, "volume-plugins"),
		ResolverConfig:           ptr.To(resolv),
		ClusterDomain:            "cluster.local",
		SyncFrequency:            metav1.Duration{Duration: 5 * time.Second},
		FileCheckFrequency:       metav1.Duration{Duration: 5 * time.Second},
		EvictionHard: map[string]string{
			"memory.available":  "50Mi",
			"nodefs.available":  "2%",
			"nodefs.inodesFree": "2%",
			"imagefs.available": "2%",
		},
		ImageGCHighThresholdPercent: ptr.To[int32](100),
		ImageGCLowThresholdPercent:  ptr.To[int32](99),
		HairpinMode:                 "none",
		// Graceful node shutdown would take a systemd-logind inhibitor lock.
		ShutdownGracePeriod: metav1.Duration{},
	}
}

// startKubelet writes the kubelet's credentials and configuration and runs it
// in the node's mount namespace.
func (n *Node) startKubelet(ctx context.Context, cp *ControlPlane) error {
	// The kubelet's own identity: system:node:<name> in system:nodes, what
	// the Node authorizer and NodeRestriction expect.
	user, err := cp.env.AddUser(envtest.User{Name: "system:node:" + n.Name, Groups: []string{"system:nodes"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the kubelet's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the kubelet's kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(n.Dir, "kubelet.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the kubelet's kubeconfig: %w", err)
	}
	// Clients of the kubelet: the API server (the node CA signed its
	// certificate) and anyone with a client certificate of the control plane's.
	apiClientCA, err := os.ReadFile(filepath.Join(cp.env.ControlPlane.APIServer.CertDir, "client-cert-auth-ca.crt"))
	if err != nil {
		return fmt.Errorf("reading the control plane's client CA: %w", err)
	}
	nodeCA, err := os.ReadFile(n.pki.caFile)
	if err != nil {
		return err
	}
	clientCAFile := filepath.Join(n.Dir, "pki", "kubelet-client-ca.crt")
	if err := os.WriteFile(clientCAFile, bytes.Join([][]byte{apiClientCA, nodeCA}, nil), 0o600); err != nil {
		return fmt.Errorf("writing the kubelet's client CA: %w", err)
	}
	// Pods get no name servers: there is no cluster DNS, and the host's must
	// not be reached from them.
	if err := os.WriteFile(filepath.Join(n.Dir, "resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	cfg, err := yaml.Marshal(n.kubeletConfig(clientCAFile))
	if err != nil {
		return fmt.Errorf("rendering the KubeletConfiguration: %w", err)
	}
	cfgPath := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return fmt.Errorf("writing the KubeletConfiguration: %w", err)
	}
	_, err = n.startInNamespace("kubelet", n.tools.kubelet,
		"--config="+cfgPath,
		"--kubeconfig="+kubeconfigPath,
		"--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.Dir, "kubelet", "pki"),
		"--hostname-override="+n.Name,
		"--node-ip="+n.IP,
		"--v="+strconv.Itoa(2),
	)
	return err
}

// waitReady waits for the Node object to report Ready.
func (n *Node) waitReady(ctx context.Context, cp *ControlPlane) error {
	kubelet := n.procOf("kubelet")
	var last string
	err := waitFor(ctx, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		for _, p := range n.procs {
			if done, err := p.exited(); done {
				return false, fmt.Errorf("%s exited: %v", p.name, err)
			}
		}
		node, err := cp.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = fmt.Sprintf("%s: %s", c.Reason, c.Message)
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for Node %s to be Ready (last: %q; see %s): %w", n.Name, last, kubelet.logPath, err)
	}
	return nil
}
