// Package proxy is rbac-proxy's server: TLS listeners with connection limits and certificates
// reloaded from disk, the request path (hygiene → identity and decision by package review →
// upstream) and the endpoints port; its configuration is package config.
package proxy
