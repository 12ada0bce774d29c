// Package proxy is rbac-proxy: an HTTPS reverse proxy that authenticates a
// caller (client certificate or bearer token through a TokenReview),
// authorizes it (static rules or a SubjectAccessReview) and then forwards the
// request to a single upstream. It is a drop-in replacement for
// kube-rbac-proxy v0.19: same flags, same defaults, same config file; its
// configuration is package config.
package proxy
