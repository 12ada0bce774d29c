// Package inject is the injector's pure core: a Pod's annotations and the operator's defaults become one validated Policy, the Policy becomes the proxy's Config and command line, and Render injects the sidecar, its volumes, ports and probes; it reads nothing but its arguments, for the admission webhook and inject -f alike.
package inject
