package check

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// read is one resource check reads: its API group and name, as RBAC and Denied name it, and the
// checks that cannot run without it. list and keep are set for the resources Gather lists alike
// in the namespaces checked: the list to read into, and where the Snapshot keeps it.
type read struct {
	group, resource string
	needs           []Code
	list            func() client.ObjectList
	keep            func(*Snapshot, client.ObjectList)
}

// reads is every resource check (and its lookup of the injector's Deployment) reads: what Gather
// lists, what Rules grants.
var reads = []read{
	// Their labels decide injection; a refusal is reported per namespace (deniedReads).
	{group: corev1.GroupName, resource: "namespaces"},
	{group: corev1.GroupName, resource: "pods",
		needs: []Code{CodeNotInjected, CodeStaleProxy, CodeUnprotectedExporter, CodeUnprotectedMetricsPort},
		list:  func() client.ObjectList { return &corev1.PodList{} },
		keep:  func(s *Snapshot, l client.ObjectList) { s.Pods = l.(*corev1.PodList).Items }},
	{group: appsv1.GroupName, resource: "deployments", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &appsv1.DeploymentList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.Deployments = l.(*appsv1.DeploymentList).Items }},
	{group: appsv1.GroupName, resource: "statefulsets", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &appsv1.StatefulSetList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.StatefulSets = l.(*appsv1.StatefulSetList).Items }},
	{group: appsv1.GroupName, resource: "daemonsets", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &appsv1.DaemonSetList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.DaemonSets = l.(*appsv1.DaemonSetList).Items }},
	{group: appsv1.GroupName, resource: "replicasets", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &appsv1.ReplicaSetList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.ReplicaSets = l.(*appsv1.ReplicaSetList).Items }},
	{group: batchv1.GroupName, resource: "jobs", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &batchv1.JobList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.Jobs = l.(*batchv1.JobList).Items }},
	{group: batchv1.GroupName, resource: "cronjobs", needs: []Code{CodeInvalidPolicy},
		list: func() client.ObjectList { return &batchv1.CronJobList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.CronJobs = l.(*batchv1.CronJobList).Items }},
	{group: corev1.GroupName, resource: "services", needs: []Code{CodeServiceTargetsAppPort, CodePlainHTTPScrape},
		list: func() client.ObjectList { return &corev1.ServiceList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.Services = l.(*corev1.ServiceList).Items }},
	{group: cmapi.SchemeGroupVersion.Group, resource: "certificates", needs: []Code{CodeCertificateNotReady},
		list: func() client.ObjectList { return &cmapi.CertificateList{} },
		keep: func(s *Snapshot, l client.ObjectList) { s.Certificates = l.(*cmapi.CertificateList).Items }},
	// Of every namespace (monitors.go).
	{group: monitoringv1.SchemeGroupVersion.Group, resource: "servicemonitors", needs: []Code{CodePlainHTTPScrape}},
	{group: monitoringv1.SchemeGroupVersion.Group, resource: "podmonitors", needs: []Code{CodePlainHTTPScrape}},
	// Only the client CAs named and the serving Secrets' ca.crt (secrets.go).
	{group: corev1.GroupName, resource: "secrets", needs: []Code{CodeClientCATrustsServingCA}},
	{group: corev1.GroupName, resource: "configmaps", needs: []Code{CodeClientCATrustsServingCA}},
	// The namespaces the webhooks leave out, and where the injector's Deployment is.
	{group: admissionregistrationv1.GroupName, resource: "mutatingwebhookconfigurations"},
}

// needs are the codes whose rules cannot run without resource.
func needs(resource string) []Code {
	for _, r := range reads {
		if r.resource == resource {
			return r.needs
		}
	}
	return nil
}

// Rules are the rights check needs to check everything (check -A without an unchecked entry):
// get and list on every resource it reads, by API group in the order of the table, and create on
// SubjectAccessReviews, the access rules' questions. The chart's ClusterRole <release>-checker is
// these rules.
func Rules() []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	index := map[string]int{}
	for _, r := range reads {
		i, ok := index[r.group]
		if !ok {
			i = len(rules)
			index[r.group] = i
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{r.group}, Verbs: []string{"get", "list"}})
		}
		rules[i].Resources = append(rules[i].Resources, r.resource)
	}
	return append(rules, rbacv1.PolicyRule{
		APIGroups: []string{authorizationv1.GroupName}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"},
	})
}
