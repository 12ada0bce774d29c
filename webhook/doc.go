// Package webhook is rbac-proxy-injector's admission side: it decides which Pods get the proxy, answers the API server's AdmissionReviews with inject's render as a patch and warnings, and makes the injected workloads' Certificates with a controller that reads what the API server stored.
package webhook
