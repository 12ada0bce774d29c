package check

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Snapshot is what check read from the cluster: the rules read nothing else, so each is a pure
// function of it (and of the SubjectAccessReviews the access rules ask).
type Snapshot struct {
	Scope Scope
	// Namespaces are the namespaces checked, with their labels where they could be read.
	Namespaces []Namespace

	Pods         []corev1.Pod
	Deployments  []appsv1.Deployment
	StatefulSets []appsv1.StatefulSet
	DaemonSets   []appsv1.DaemonSet
	ReplicaSets  []appsv1.ReplicaSet
	Jobs         []batchv1.Job
	CronJobs     []batchv1.CronJob
	Services     []corev1.Service
	// ServiceMonitors and PodMonitors are empty where prometheus-operator's CRDs are not installed.
	ServiceMonitors []monitoringv1.ServiceMonitor
	PodMonitors     []monitoringv1.PodMonitor
	Certificates    []cmapi.Certificate
	// NoCertificateAPI says cert-manager's Certificates are not served at all.
	NoCertificateAPI bool
	// ServingCAs are the ca.crt of cert-manager's serving Secrets in the namespaces where a
	// workload names a client CA; nothing else of those Secrets is kept.
	ServingCAs []ServingCA
	// ClientCAs are the bundles the workloads' rbac-proxy.io/client-ca annotations name.
	ClientCAs []ClientCABundle

	// Excluded are the namespaces checked that the injector's webhooks leave out by name: it
	// never sees their Pods.
	Excluded []string

	// Denied are the reads the caller had no right to (or that failed for another reason the
	// run survives): what depends on them is reported as unchecked.
	Denied []Denied
}

// Namespace is a namespace checked. LabelsKnown is false when the caller may not read it.
type Namespace struct {
	Name        string
	Labels      map[string]string
	LabelsKnown bool
}

// ServingCA is the ca.crt of a cert-manager serving Secret (type kubernetes.io/tls with the
// cert-manager.io/certificate-name annotation).
type ServingCA struct {
	Namespace, Secret, Certificate string
	CA                             []byte
}

// ClientCABundle is the key of a ConfigMap or Secret that a proxy trusts as its client CA.
type ClientCABundle struct {
	Namespace string
	Source    inject.ClientCASource
	Name, Key string
	// PEM is the key's value; Found is false when the object or key does not exist.
	PEM   []byte
	Found bool
}

// Denied is a read that was refused: Resource as the API names it ("pods", "secrets"), in
// Namespace (empty: cluster-wide), and the API server's reason.
type Denied struct {
	Resource  string
	Namespace string
	Reason    string
}

// denied reports whether a read of resource in namespace was refused (a cluster-wide refusal
// counts for every namespace).
func (s *Snapshot) denied(resource, namespace string) bool {
	for _, d := range s.Denied {
		if d.Resource == resource && (d.Namespace == namespace || d.Namespace == "") {
			return true
		}
	}
	return false
}

// namespaceLabels returns a namespace's labels, and false when they could not be read.
func (s *Snapshot) namespaceLabels(name string) (map[string]string, bool) {
	for _, ns := range s.Namespaces {
		if ns.Name == name {
			return ns.Labels, ns.LabelsKnown
		}
	}
	return nil, false
}
