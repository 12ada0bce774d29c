package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The node's network is one host bridge and CNI's bridge + host-local on it,
// with no gateway, masquerade or forwarding: Pods reach the host's bridge
// address and each other, the host reaches the Pods, and nothing else routes.
// The API server listens on the bridge address, which is also the first
// address of the service range, so the `kubernetes` Service's ClusterIP is
// where the API server is and Pods' in-cluster config works without kube-proxy.
const (
	BridgeName = "rbacproxy0"
	// BridgeAddress is the host's address on the bridge: the node's
	// InternalIP, the API server's and the kubelet's listen address.
	BridgeAddress = "10.88.0.1"
	bridgePrefix  = 16
	// ServiceCIDR is the API server's service range; its first address is
	// BridgeAddress.
	ServiceCIDR = "10.88.0.0/24"
	// Pods get addresses from this part of the bridge's subnet.
	podRangeStart = "10.88.1.1"
	podRangeEnd   = "10.88.1.254"
	// APIServerPort is where the API server listens on BridgeAddress, the
	// port of the `kubernetes` Service.
	APIServerPort = 443
)

// createBridge creates the bridge the API server and the Pods meet on.
func (n *Node) createBridge() error {
	subnet := &net.IPNet{IP: net.ParseIP(BridgeAddress).Mask(net.CIDRMask(bridgePrefix, 32)), Mask: net.CIDRMask(bridgePrefix, 32)}
	if err := routeFree(subnet); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "add", BridgeName, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", BridgeAddress, bridgePrefix), "dev", BridgeName},
		{"link", "set", BridgeName, "up"},
	} {
		if err := n.ipCmd(args...); err != nil {
			return fmt.Errorf("creating bridge %s: %w", BridgeName, err)
		}
		n.bridgeCreated = true
	}
	return nil
}

// routeFree refuses a subnet the host already reaches through an interface:
// the bridge would take that traffic over.
func routeFree(subnet *net.IPNet) error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("listing the host's interfaces: %w", err)
	}
	for _, iface := range ifaces {
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
				return fmt.Errorf("the node's subnet %s is already on interface %s (%s): another node runs or a previous one was not removed", subnet, iface.Name, ipn)
			}
		}
	}
	return nil
}

// deleteBridge removes the bridge; the veths on it went with their Pods'
// network namespaces.
func (n *Node) deleteBridge() error {
	if !n.bridgeCreated {
		return nil // not ours: a leftover refused the start
	}
	if _, err := net.InterfaceByName(BridgeName); err != nil {
		return nil
	}
	if err := n.ipCmd("link", "del", BridgeName); err != nil {
		return fmt.Errorf("removing bridge %s: %w", BridgeName, err)
	}
	return nil
}

func (n *Node) ipCmd(args ...string) error {
	out, err := exec.Command(n.tools.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// cniDir is where containerd reads the node's CNI configuration.
func (n *Node) cniDir() string { return filepath.Join(n.Dir, "cni") }

// writeCNIConfig writes the bridge + host-local network; containerd reports
// the node's network ready once it is there.
func (n *Node) writeCNIConfig() error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "rbac-proxy",
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      BridgeName,
			"isGateway":   false,
			"ipMasq":      false,
			"hairpinMode": false,
			"ipam": map[string]any{
				"type": "host-local",
				"ranges": [][]map[string]string{{{
					"subnet":     fmt.Sprintf("%s/%d", net.ParseIP(BridgeAddress).Mask(net.CIDRMask(bridgePrefix, 32)), bridgePrefix),
					"rangeStart": podRangeStart,
					"rangeEnd":   podRangeEnd,
				}}},
				"dataDir": filepath.Join(n.Dir, "cni-ipam"),
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.cniDir(), 0o755); err != nil {
		return fmt.Errorf("creating the CNI configuration folder: %w", err)
	}
	return os.WriteFile(filepath.Join(n.cniDir(), "10-rbac-proxy.conflist"), b, 0o644)
}
