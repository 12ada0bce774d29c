// Package version holds the build's version, set at link time by the Makefile
// (-X github.com/rbac-proxy/rbac-proxy/internal/version.Version=...).
package version

// Version is the release this binary was built from; "dev" for plain go builds.
var Version = "dev"
