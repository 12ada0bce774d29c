package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The Node registered as the kubelet's credentials allow, on the bridge
// address, and is Ready.
func TestNodeReady(t *testing.T) {
	node, err := cp.Clientset.CoreV1().Nodes().Get(context.Background(), cp.Node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("Node %s is not Ready: %+v", node.Name, node.Status.Conditions)
	}
	var internal string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = a.Address
		}
	}
	if internal != framework.BridgeAddress {
		t.Errorf("Node InternalIP = %q, want %s: %+v", internal, framework.BridgeAddress, node.Status.Addresses)
	}
	t.Logf("figure: node start (Start → Node Ready) %s, of which the kubelet's start → Node Ready %s",
		cp.Node.StartTook().Round(100*time.Millisecond), cp.Node.KubeletTook().Round(100*time.Millisecond))
}
