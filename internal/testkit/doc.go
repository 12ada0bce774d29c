// Package testkit is what unit and end-to-end tests share besides certificates (internal/testpki): a free port, a file of the test's own, and a volume that changes the way the kubelet changes a Secret's.
package testkit
